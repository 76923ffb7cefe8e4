//! Shrink plans over HTTP (see `tidal_core::shrink`).
//!
//! | request | answer |
//! |---|---|
//! | `POST /admin/shrink-plan` `{"plan_id":"shrink-p4","target_placements":[{"prg_id":"default:3","target_members":[1,2,3],"target_routing_epoch":42}]}` | 201, the plan, a Draft |
//! | `POST /admin/shrink-plan` `{"nodes":3,"prgs":{"default":4}}` (`plan_id` optional) | 201, the plan the planner computes |
//! | either, with `"dry_run":true` | 200, the plan, not recorded |
//! | `GET /admin/shrink-plan` | 200, `{"plans":[...]}` |
//! | `GET /admin/shrink-plan/{id}` | 200, the plan with every move |
//! | `POST /admin/shrink-plan/arm` `{"plan_id":...}` | 202, the id of the operation that runs it (`/api/v1/operations/{id}`) |
//! | `POST /admin/shrink-plan/cancel` `{"plan_id":...}` | 200, the plan: a Draft Cancelled, an armed plan being rolled back |
//!
//! An armed plan runs as a scaling operation of kind `scale_in` (its slot
//! moves, then its replica moves and leader changes, each gated on health
//! and within the disruption budget); when it is done the drained PRGs are
//! deleted and the plan is Completed. Cancelling an armed plan stops the
//! operation and starts one of kind `scale_in_undo` that moves every slot
//! and replica back to where they were when the plan was made; the plan
//! is RolledBack once they are. The nodes a plan removes are Draining
//! while it is armed and removed when it completes; arming a plan that
//! removes a control-plane voter is refused (409).
//!
//! A plan binds the exact list of moves with their bytes and an ETA,
//! computed from the cluster as it is (`cp_version`, `routing_epoch`).
//! Bad input is refused with 400 (a malformed body or plan id, no
//! targets, target members that are not 3 distinct active nodes, a plan
//! that shrinks nothing), 404 (an unknown PRG, tenant or plan) or 409 (a
//! duplicate id, a target epoch at or below the current one, a plan that
//! is not a Draft, another plan armed, a plan made against a cluster that
//! has changed), and nothing changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tidal_control::{CpCommand, CpReply};
use tidal_core::shrink::{check_arm, make_plan, plan_shrink, ShrinkError, ShrinkPlan, ShrinkRequest, TargetPlacement};
use tidal_core::{NodeId, PrgId};

use crate::moves_api::{fresh, parse_body, slot_ranges, ApiError};
use crate::node::Shared;
use crate::operations_api::accepted;
use crate::scale_api::sizes;

type S = State<Arc<Shared>>;

impl From<ShrinkError> for ApiError {
    fn from(e: ShrinkError) -> Self {
        use ShrinkError::*;
        match e {
            BadId(_)
            | NoTargets
            | TargetTwice(_)
            | Members { .. }
            | NotInCluster { .. }
            | NothingShrinks { .. }
            | TooFewNodes(_)
            | NotFewerNodes { .. }
            | BadPrgCount { .. }
            | KeepsReplica(_) => ApiError::BadRequest(e.to_string()),
            UnknownPrg(_) | UnknownTenant(_) | NotFound(_) => ApiError::NotFound(e.to_string()),
            Duplicate(_) | StaleEpoch { .. } | State { .. } | OtherArmed(_) | Busy(_) | Stale { .. } | Placement(_) => {
                ApiError::Conflict(e.to_string())
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct TargetBody {
    prg_id: String,
    target_members: Vec<NodeId>,
    target_routing_epoch: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct CreateBody {
    plan_id: Option<String>,
    target_placements: Option<Vec<TargetBody>>,
    nodes: Option<u64>,
    prgs: Option<BTreeMap<String, u32>>,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct PlanRef {
    plan_id: String,
}

pub async fn create(State(s): S, body: Bytes) -> Result<Response, ApiError> {
    let req: CreateBody = parse_body(&body)?;
    let easy = req.nodes.is_some() || req.prgs.is_some();
    let ask = match (req.target_placements, easy) {
        (Some(targets), false) => {
            let targets = targets
                .into_iter()
                .map(|t| {
                    let prg = PrgId::try_from(t.prg_id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                    Ok(TargetPlacement { prg, members: t.target_members, routing_epoch: t.target_routing_epoch })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            if req.plan_id.is_none() {
                return Err(ApiError::BadRequest("plan_id is required with target_placements".into()));
            }
            Ask::Targets(targets)
        }
        (None, true) => Ask::Sizes(ShrinkRequest { nodes: req.nodes, prgs: req.prgs.unwrap_or_default() }),
        _ => {
            return Err(ApiError::BadRequest(
                "give either target_placements, or nodes and/or prgs for the planner to compute them".into(),
            ))
        }
    };
    let plan = draft(&s, req.plan_id, ask, req.dry_run).await?;
    if req.dry_run {
        return Ok(Json(view(&plan)).into_response());
    }
    let location = format!("/admin/shrink-plan/{}", plan.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(view(&plan))).into_response())
}

/// What a plan is made from: the runbook's target placements, or the
/// sizes the planner computes them for.
pub(crate) enum Ask {
    Targets(Vec<TargetPlacement>),
    Sizes(ShrinkRequest),
}

/// Make plan `id` (by default `shrink-v` and the control-plane version)
/// from `ask` against the cluster as it is, and record it as a Draft
/// unless `dry_run`.
pub(crate) async fn draft(s: &Shared, id: Option<String>, ask: Ask, dry_run: bool) -> Result<ShrinkPlan, ApiError> {
    let state = fresh(s).await?;
    let id = id.unwrap_or_else(|| format!("shrink-v{}", state.version));
    if state.shrink_plans.contains_key(&id) {
        return Err(ShrinkError::Duplicate(id).into());
    }
    let sizes = sizes(s, &state);
    let now = s.clock.now_ms();
    let plan = match ask {
        Ask::Targets(targets) => make_plan(&state, &id, targets, None, &sizes, now)?,
        Ask::Sizes(ask) => plan_shrink(&state, &id, &ask, &sizes, now)?,
    };
    if !dry_run {
        match s.cp.propose(CpCommand::CreateShrinkPlan(Box::new(plan.clone()))).await? {
            CpReply::Ok { .. } => {}
            other => return Err(ApiError::Unavailable(format!("unexpected answer {other:?}"))),
        }
    }
    Ok(plan)
}

pub async fn list(State(s): S) -> Result<Response, ApiError> {
    let state = fresh(&s).await?;
    let plans: Vec<Value> = state.shrink_plans.values().map(summary).collect();
    Ok(Json(json!({ "plans": plans })).into_response())
}

pub async fn get_plan(State(s): S, Path(id): Path<String>) -> Result<Response, ApiError> {
    let state = fresh(&s).await?;
    let plan = state.shrink_plans.get(&id).ok_or(ShrinkError::NotFound(id))?;
    Ok(Json(view(plan)).into_response())
}

pub async fn arm(State(s): S, body: Bytes) -> Result<Response, ApiError> {
    let req: PlanRef = parse_body(&body)?;
    let op = arm_plan(&s, &req.plan_id).await?;
    Ok(accepted(op, json!({ "plan_id": req.plan_id })))
}

/// Arm plan `id`: the id of the operation that runs it.
pub(crate) async fn arm_plan(s: &Shared, id: &str) -> Result<u64, ApiError> {
    let state = fresh(s).await?;
    check_arm(&state, id)?;
    let cmd = CpCommand::ArmShrinkPlan {
        id: id.to_string(),
        budget: s.config.budget,
        gate_timeout_ms: crate::scale_api::DEFAULT_GATE_TIMEOUT_MS,
    };
    match s.cp.propose(cmd).await? {
        CpReply::OperationStarted { id } => Ok(id),
        other => Err(ApiError::Unavailable(format!("unexpected answer {other:?}"))),
    }
}

pub async fn cancel(State(s): S, body: Bytes) -> Result<Response, ApiError> {
    let req: PlanRef = parse_body(&body)?;
    let state = fresh(&s).await?;
    match state.shrink_plans.get(&req.plan_id) {
        None => return Err(ShrinkError::NotFound(req.plan_id).into()),
        Some(p) if p.state.is_finished() => {
            return Err(ApiError::Conflict(format!("plan {} is {}", p.id, p.state.name())));
        }
        Some(_) => {}
    }
    s.cp.propose(CpCommand::CancelShrinkPlan { id: req.plan_id.clone() }).await?;
    let state = fresh(&s).await?;
    let plan = state.shrink_plans.get(&req.plan_id).ok_or(ShrinkError::NotFound(req.plan_id))?;
    Ok(Json(view(plan)).into_response())
}

/// A plan in a line's worth of fields.
pub fn summary(p: &ShrinkPlan) -> Value {
    json!({
        "plan_id": p.id,
        "state": p.state.name(),
        "targets": p.targets.len(),
        "moves": p.replica_moves.len() + p.slot_moves.len(),
        "remove_prgs": p.remove_prgs.iter().map(PrgId::to_string).collect::<Vec<_>>(),
        "remove_nodes": p.remove_nodes,
        "total_bytes": p.total_bytes,
        "eta_ms": p.eta_ms,
        "created_ms": p.created_ms,
        "finished_ms": p.finished_ms,
        "operation": p.operation,
        "rolling_back": p.rolling_back,
    })
}

/// A plan with every move it binds.
pub fn view(p: &ShrinkPlan) -> Value {
    json!({
        "plan_id": p.id,
        "state": p.state.name(),
        "target_placements": p.targets.iter().map(|t| json!({
            "prg_id": t.prg.to_string(), "target_members": t.members, "target_routing_epoch": t.routing_epoch,
        })).collect::<Vec<_>>(),
        "cp_version": p.version,
        "routing_epoch": p.routing_epoch,
        "nodes": p.nodes.keys().collect::<Vec<_>>(),
        "replica_moves": p.replica_moves.iter().map(|m| json!({
            "prg": m.step.prg.to_string(), "from": m.step.from, "to": m.step.to, "bytes": m.bytes,
        })).collect::<Vec<_>>(),
        "slot_moves": p.slot_moves.iter().map(|m| json!({
            "tenant": m.tenant, "from": m.from.to_string(), "to": m.to.to_string(),
            "slots": slot_ranges(&m.slots), "slot_count": m.slots.len(), "bytes": m.bytes,
        })).collect::<Vec<_>>(),
        "leader_changes": p.leader_changes.iter().map(|(prg, to)| json!({"prg": prg.to_string(), "to": to})).collect::<Vec<_>>(),
        "remove_prgs": p.remove_prgs.iter().map(PrgId::to_string).collect::<Vec<_>>(),
        "remove_nodes": p.remove_nodes,
        "total_bytes": p.total_bytes,
        "epoch_bumps": p.epoch_bumps,
        "eta_ms": p.eta_ms,
        "created_ms": p.created_ms,
        "armed_ms": p.armed_ms,
        "finished_ms": p.finished_ms,
        "operation": p.operation,
        "rolling_back": p.rolling_back,
        "undo_attempts": p.undo_attempts,
        "error": p.error,
    })
}
