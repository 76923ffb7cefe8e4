//! The scaling API: plans of a scale-up, shown before anything changes,
//! and run as operations.
//!
//! | request | answer |
//! |---|---|
//! | `POST /api/v1/clusters/{cluster}/scale` `{"operation":"scale_out","target_count":5,"prgs":{"default":8},"dry_run":true}` | 200, the plan (without `dry_run`: 202, an operation) |
//! | `POST /api/v1/tenants/{tenant}/scale` `{"prgs":8,"dry_run":true}` | the same, for one tenant's PRGs |
//! | `GET /api/v1/clusters/{cluster}/status` | 200, `cluster_id`, `instances`, `scaling_status`, `health_status`, `last_operation` |
//!
//! A plan lists the nodes to add, the new PRGs with their members, every
//! replica and slot move with the bytes it carries, the leader changes,
//! the routing-epoch bumps, the total bytes and an ETA, and the
//! control-plane version it was computed from (`tidal_core::planner`).
//!
//! Without `dry_run` the plan runs as a scaling operation (202, its id and
//! a `Location` under `/api/v1/operations`; see `operations_api`). A run
//! may name the `cp_version` of the dry run it follows (409 if the cluster
//! has changed since), and override `gate_timeout_ms`, `join_timeout_ms`,
//! `max_moves_per_node` and `max_moves`.
//!
//! `scale_in` (`target_count` the nodes to keep, `prgs` the PRGs per
//! tenant) drafts a shrink plan and answers 201 with it; nothing shrinks
//! until an operator arms it (`shrink_api`). With `"auto_arm":true` the
//! plan is armed at once (202, its operation), but only on a node whose
//! policy allows it (`--shrink-auto-arm`, off by default; 409 otherwise,
//! and nothing is drafted).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use tidal_control::{CpCommand, CpError, CpReply};
use tidal_core::health::{cluster_problems, NodeHealth};
use tidal_core::operation::{Budget, OpPhase, Operation};
use tidal_core::planner::scale::{plan_scale, ScaleError, ScalePlan, ScaleRequest, Sizes};
use tidal_core::planner::PlanNode;
use tidal_core::replica_move::ReplicaPhase;
use tidal_core::shrink::ShrinkRequest;
use tidal_core::slot_move::MovePhase;
use tidal_core::{ClusterState, PrgId};

use crate::moves_api::{fresh, parse_body, slot_ranges, ApiError};
use crate::node::Shared;
use crate::operations_api::{accepted, status_of};
use crate::shrink_api::{arm_plan, draft, view as shrink_view, Ask};

/// The name a cluster answers to in `/api/v1/clusters/{cluster}`.
pub const CLUSTER_ID: &str = "tidal";

/// Move throughput a plan's ETA assumes when moves are not rate-limited
/// (what a slot move reaches on one small machine; see docs/benchmarks.md).
const ASSUMED_RATE: u64 = 20 << 20;

/// Time a plan's ETA allows for each step's fence, epoch bump or voter change.
const STEP_MS: u64 = 1000;

type S = State<Arc<Shared>>;

impl From<ScaleError> for ApiError {
    fn from(e: ScaleError) -> Self {
        match e {
            ScaleError::UnknownTenant(_) => ApiError::NotFound(e.to_string()),
            ScaleError::TooManyPrgs { .. } | ScaleError::DuplicateNode(_) | ScaleError::Nothing => {
                ApiError::BadRequest(e.to_string())
            }
            ScaleError::Shrink { .. }
            | ScaleError::NodeExists(_)
            | ScaleError::NodeRemoved(_)
            | ScaleError::Placement(_) => ApiError::Conflict(e.to_string()),
        }
    }
}

/// How a run may differ from the defaults; every field is optional (and
/// a field of both request bodies).
#[derive(Debug, Default)]
pub struct RunOptions {
    /// The control-plane version of the dry run this run must match.
    pub cp_version: Option<u64>,
    pub gate_timeout_ms: Option<u64>,
    pub join_timeout_ms: Option<u64>,
    pub max_moves_per_node: Option<u32>,
    pub max_moves: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct ClusterScale {
    pub operation: String,
    pub target_count: Option<u64>,
    #[serde(default)]
    pub prgs: BTreeMap<String, u32>,
    #[serde(default)]
    pub dry_run: bool,
    /// `scale_in`: arm the drafted plan at once, if this node's policy
    /// allows it (`--shrink-auto-arm`).
    #[serde(default)]
    pub auto_arm: bool,
    /// See [`RunOptions`].
    pub cp_version: Option<u64>,
    pub gate_timeout_ms: Option<u64>,
    pub join_timeout_ms: Option<u64>,
    pub max_moves_per_node: Option<u32>,
    pub max_moves: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct TenantScale {
    pub prgs: u32,
    #[serde(default)]
    pub dry_run: bool,
    /// See [`RunOptions`].
    pub cp_version: Option<u64>,
    pub gate_timeout_ms: Option<u64>,
    pub join_timeout_ms: Option<u64>,
    pub max_moves_per_node: Option<u32>,
    pub max_moves: Option<u32>,
}

impl RunOptions {
    /// The disruption budget, gate timeout and join timeout a run gets:
    /// as asked, or this node's defaults; 400 when out of range.
    pub(crate) fn settings(&self, s: &Shared) -> Result<(Budget, u64, u64), ApiError> {
        let budget = Budget {
            per_node: self.max_moves_per_node.unwrap_or(s.config.budget.per_node),
            cluster: self.max_moves.unwrap_or(s.config.budget.cluster),
        };
        if budget.per_node == 0 || budget.cluster == 0 {
            return Err(ApiError::BadRequest("max_moves_per_node and max_moves must be at least 1".into()));
        }
        let gate_timeout_ms = self.gate_timeout_ms.unwrap_or(DEFAULT_GATE_TIMEOUT_MS);
        let join_timeout_ms = self.join_timeout_ms.unwrap_or(DEFAULT_JOIN_TIMEOUT_MS);
        for (name, v) in [("gate_timeout_ms", gate_timeout_ms), ("join_timeout_ms", join_timeout_ms)] {
            if !(100..=3_600_000).contains(&v) {
                return Err(ApiError::BadRequest(format!("{name} must be between 100 and 3600000, got {v}")));
            }
        }
        Ok((budget, gate_timeout_ms, join_timeout_ms))
    }
}

/// The [`RunOptions`] of a request body.
macro_rules! run_options {
    ($r:expr) => {
        RunOptions {
            cp_version: $r.cp_version,
            gate_timeout_ms: $r.gate_timeout_ms,
            join_timeout_ms: $r.join_timeout_ms,
            max_moves_per_node: $r.max_moves_per_node,
            max_moves: $r.max_moves,
        }
    };
}

/// 404 unless `cluster` names this cluster.
fn this_cluster(cluster: &str) -> Result<(), ApiError> {
    if cluster == CLUSTER_ID {
        return Ok(());
    }
    Err(ApiError::NotFound(format!("no cluster {cluster} (this one is {CLUSTER_ID})")))
}

/// The scale-up `req` asks for, against `state`.
fn cluster_request(state: &ClusterState, req: &ClusterScale) -> Result<ScaleRequest, ApiError> {
    let now = state.nodes.len() as u64;
    let add = match (req.operation.as_str(), req.target_count) {
        ("scale_out", Some(n)) if n < now => {
            return Err(ApiError::BadRequest(format!(
                "target_count {n} is below the {now} nodes the cluster has; scale-in needs an armed shrink plan"
            )))
        }
        ("scale_out", Some(n)) if n > MAX_NODES => {
            return Err(ApiError::BadRequest(format!("target_count {n} is above the maximum of {MAX_NODES}")))
        }
        ("scale_out", n) => n.unwrap_or(now) - now,
        (other, _) => {
            return Err(ApiError::BadRequest(format!("operation must be scale_out or scale_in, not {other:?}")))
        }
    };
    let next = state.next_node_id();
    let add_nodes =
        (next..next + add).map(|id| PlanNode { id, zone: String::new(), capacity: 1, draining: false }).collect();
    Ok(ScaleRequest { add_nodes, prgs: req.prgs.clone() })
}

pub async fn scale_cluster(State(s): S, Path(cluster): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    this_cluster(&cluster)?;
    let req: ClusterScale = parse_body(&body)?;
    if req.operation == "scale_in" {
        return scale_in(&s, req).await;
    }
    // A request that is wrong whatever the state (scale_in, a bad target) is
    // refused from this node's copy, without a round trip to the control plane.
    cluster_request(&s.cache.get(), &req)?;
    let make = |state: &ClusterState| cluster_request(state, &req);
    answer(&s, make, req.dry_run, &run_options!(req)).await
}

/// `scale_in` drafts a shrink plan (see `shrink_api`) and leaves arming
/// it to an operator: 201 with the plan (its `plan_id`, and a `Location`
/// under `/admin/shrink-plan`), or 200 for a dry run.
async fn scale_in(s: &Shared, req: ClusterScale) -> Result<Response, ApiError> {
    if req.auto_arm && !s.config.shrink_auto_arm {
        return Err(ApiError::Conflict(
            "auto_arm: this node's policy does not allow arming shrink plans automatically (--shrink-auto-arm); \
             draft the plan and arm it yourself"
                .into(),
        ));
    }
    let ask = ShrinkRequest { nodes: req.target_count, prgs: req.prgs };
    let plan = draft(s, None, Ask::Sizes(ask), req.dry_run).await?;
    let view = shrink_view(&plan);
    if req.dry_run {
        return Ok(Json(view).into_response());
    }
    if req.auto_arm {
        let op = arm_plan(s, &plan.id).await?;
        return Ok(accepted(op, json!({ "plan": view })));
    }
    let location = format!("/admin/shrink-plan/{}", plan.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(view)).into_response())
}

/// Nodes a cluster may be scaled to.
const MAX_NODES: u64 = 1000;

pub async fn scale_tenant(State(s): S, Path(tenant): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let req: TenantScale = parse_body(&body)?;
    let make = |_: &ClusterState| Ok(ScaleRequest { add_nodes: Vec::new(), prgs: [(tenant.clone(), req.prgs)].into() });
    answer(&s, make, req.dry_run, &run_options!(req)).await
}

/// Times a plan is made again when the cluster changed between planning
/// and starting it (a node re-registered, a leader moved).
pub(crate) const START_ATTEMPTS: u32 = 3;

/// Plan the request `make` builds against the control plane's current
/// state; show the plan (a dry run) or start an operation that runs it.
async fn answer(
    s: &Shared,
    make: impl Fn(&ClusterState) -> Result<ScaleRequest, ApiError>,
    dry_run: bool,
    run: &RunOptions,
) -> Result<Response, ApiError> {
    if dry_run {
        run.settings(s)?;
        let state = fresh(s).await?;
        let plan = plan_scale(&state, &make(&state)?, &sizes(s, &state))?;
        check_version(run, &plan)?;
        return Ok(Json(plan_view(&plan)).into_response());
    }
    let (id, plan) = start(s, make, run).await?;
    Ok(accepted(id, json!({ "plan": plan_view(&plan) })))
}

/// 409 when the run must match a dry run's version and the plan was made
/// from another.
fn check_version(run: &RunOptions, plan: &ScalePlan) -> Result<(), ApiError> {
    match run.cp_version.filter(|v| *v != plan.version) {
        Some(v) => Err(ApiError::Conflict(format!(
            "the cluster changed since the dry run (version {v}, now {}): plan again",
            plan.version
        ))),
        None => Ok(()),
    }
}

/// Plan the request `make` builds and start the operation that runs it
/// (planning again, up to [`START_ATTEMPTS`] times, when the cluster
/// changed in between); its id and the plan.
pub(crate) async fn start(
    s: &Shared,
    make: impl Fn(&ClusterState) -> Result<ScaleRequest, ApiError>,
    run: &RunOptions,
) -> Result<(u64, ScalePlan), ApiError> {
    let (budget, gate_timeout_ms, join_timeout_ms) = run.settings(s)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let state = fresh(s).await?;
        let plan = plan_scale(&state, &make(&state)?, &sizes(s, &state))?;
        check_version(run, &plan)?;
        let op = Operation::new("scale_out", plan.clone(), budget, gate_timeout_ms, join_timeout_ms);
        match s.cp.propose(CpCommand::StartOperation(Box::new(op))).await {
            Ok(CpReply::OperationStarted { id }) => return Ok((id, plan)),
            Ok(other) => return Err(ApiError::Unavailable(format!("unexpected answer {other:?}"))),
            Err(CpError::Refused(why))
                if why.starts_with("the cluster changed") && run.cp_version.is_none() && attempt < START_ATTEMPTS => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// How long a gate may take by default before its step fails.
pub(crate) const DEFAULT_GATE_TIMEOUT_MS: u64 = 60_000;
/// How long new nodes may take by default to join and become ready.
const DEFAULT_JOIN_TIMEOUT_MS: u64 = 120_000;

/// Sizes for a plan: each PRG's bytes as its leader estimates them, and
/// the configured move rate.
pub(crate) fn sizes(s: &Shared, state: &ClusterState) -> Sizes {
    let reports = s.cp_reports.lock().expect("reports lock").clone();
    let mut replicas: BTreeMap<u64, u64> = BTreeMap::new();
    for p in state.placements.values() {
        for m in &p.members {
            *replicas.entry(*m).or_default() += 1;
        }
    }
    let per_replica =
        |n: &u64| reports.get(n).map_or(0, |r| r.data_bytes / replicas.get(n).copied().unwrap_or(1).max(1));
    // What a PRG's leader reports it holds; failing that, the rows its
    // members report holding, shared evenly over their replicas.
    let reported: BTreeMap<&PrgId, u64> =
        reports.values().flat_map(|r| r.prg_bytes.iter()).map(|(p, b)| (p, *b)).collect();
    let prg_bytes: BTreeMap<PrgId, u64> = state
        .placements
        .values()
        .map(|p| {
            let sum: u64 = p.members.iter().map(per_replica).sum();
            let bytes = reported.get(&p.prg).copied().unwrap_or(sum / (p.members.len().max(1) as u64));
            (p.prg.clone(), bytes)
        })
        .collect();
    let rate = if s.config.moves.rate_bytes > 0 { s.config.moves.rate_bytes } else { ASSUMED_RATE };
    Sizes { prg_bytes, slot_bytes: BTreeMap::new(), rate, step_ms: STEP_MS }
}

pub fn plan_view(p: &ScalePlan) -> serde_json::Value {
    json!({
        "cpVersion": p.version,
        "addNodes": p.add_nodes.iter().map(|n| json!({"id": n.id, "zone": n.zone, "capacity": n.capacity})).collect::<Vec<_>>(),
        "newPrgs": p.new_prgs.iter().map(|(id, m)| json!({"prg": id.to_string(), "members": m})).collect::<Vec<_>>(),
        "replicaMoves": p.replica_moves.iter().map(|m| json!({
            "prg": m.step.prg.to_string(), "from": m.step.from, "to": m.step.to, "bytes": m.bytes,
        })).collect::<Vec<_>>(),
        "slotMoves": p.slot_moves.iter().map(|m| json!({
            "tenant": m.tenant, "from": m.from.to_string(), "to": m.to.to_string(),
            "slots": slot_ranges(&m.slots), "slotCount": m.slots.len(), "bytes": m.bytes,
        })).collect::<Vec<_>>(),
        "leaderChanges": p.leader_changes.iter().map(|(prg, to)| json!({"prg": prg.to_string(), "to": to})).collect::<Vec<_>>(),
        "totalBytes": p.total_bytes,
        "epochBumps": p.epoch_bumps,
        "etaMs": p.eta_ms,
    })
}

/// `GET /api/v1/clusters/{cluster}/status`: how many nodes, whether data is
/// moving, whether the cluster is healthy (and every reason it is not), and
/// the latest move.
pub async fn cluster_status(State(s): S, Path(cluster): Path<String>) -> Result<Response, ApiError> {
    this_cluster(&cluster)?;
    let state = s.cache.get();
    let now = s.clock.now_ms();
    let reports: BTreeMap<u64, NodeHealth> =
        s.cp_reports.lock().expect("reports lock").iter().map(|(n, r)| (*n, r.health(now))).collect();
    let problems = cluster_problems(&state, &reports, now, s.health_limits());
    let rolling_back = state.moves.values().any(|m| m.phase == MovePhase::RollingBack)
        || state.replica_moves.values().any(|m| m.phase == ReplicaPhase::RollingBack);
    let moving = state.moves.values().any(|m| !m.phase.is_finished())
        || state.replica_moves.values().any(|m| !m.phase.is_finished());
    let op = state.operations.values().next_back();
    let op_running = op.filter(|o| !o.phase.is_finished()).map(|o| o.phase);
    let scaling = if rolling_back || op_running == Some(OpPhase::RollingBack) {
        "rolling_back"
    } else if moving || op_running.is_some() {
        "scaling"
    } else {
        "stable"
    };
    let latest_slot = state
        .moves
        .values()
        .max_by_key(|m| m.id)
        .map(|m| (m.id, "slot_move", m.phase.name(), m.created_ms, m.finished_ms));
    let latest_replica = state
        .replica_moves
        .values()
        .max_by_key(|m| m.id)
        .map(|m| (m.id, "replica_move", m.phase.name(), m.created_ms, m.finished_ms));
    let last_move = latest_slot.into_iter().chain(latest_replica).max_by_key(|l| l.0).map(|(id, kind, status, at, done)| {
        json!({"id": id, "type": kind, "status": status, "started_at": at, "completed_at": done})
    });
    // The latest scaling operation, or else the latest move.
    let last = op
        .map(|o| {
            json!({"id": o.id, "type": o.kind, "status": status_of(o.phase), "phase": o.phase.name(),
                "started_at": o.created_ms, "completed_at": o.finished_ms, "error": o.error})
        })
        .or(last_move);
    Ok(Json(json!({
        "cluster_id": CLUSTER_ID,
        "instances": state.nodes.values().filter(|n| n.state == tidal_core::NodeState::Active).count(),
        "scaling_status": scaling,
        "health_status": if problems.is_empty() { "healthy" } else { "degraded" },
        "health_reasons": problems,
        "last_operation": last,
    }))
    .into_response())
}
