//! The scaling API: plans of a scale-up, shown before anything changes.
//!
//! | request | answer |
//! |---|---|
//! | `POST /api/v1/clusters/{cluster}/scale` `{"operation":"scale_out","target_count":5,"prgs":{"default":8},"dry_run":true}` | 200, the plan |
//! | `POST /api/v1/tenants/{tenant}/scale` `{"prgs":8,"dry_run":true}` | 200, the plan |
//!
//! A plan lists the nodes to add, the new PRGs with their members, every
//! replica and slot move with the bytes it carries, the leader changes,
//! the routing-epoch bumps, the total bytes and an ETA, and the
//! control-plane version it was computed from (`tidal_core::planner`).
//! | `GET /api/v1/clusters/{cluster}/status` | 200, `cluster_id`, `instances`, `scaling_status`, `health_status`, `last_operation` |
//!
//! `scale_in` is refused (409): shrinking runs only from an armed shrink
//! plan. Running a plan (`dry_run: false`) is answered 501 for now; its
//! steps can be run one by one with `tidal prgs add` and `tidal move`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use tidal_core::health::{cluster_problems, HealthLimits, NodeHealth};
use tidal_core::planner::scale::{plan_scale, ScaleError, ScalePlan, ScaleRequest, Sizes};
use tidal_core::planner::PlanNode;
use tidal_core::replica_move::ReplicaPhase;
use tidal_core::slot_move::MovePhase;
use tidal_core::{ClusterState, PrgId};

use crate::moves_api::{parse_body, slot_ranges, ApiError};
use crate::node::Shared;

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
            ScaleError::Shrink { .. } | ScaleError::NodeExists(_) | ScaleError::Placement(_) => {
                ApiError::Conflict(e.to_string())
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterScale {
    pub operation: String,
    pub target_count: Option<u64>,
    #[serde(default)]
    pub prgs: BTreeMap<String, u32>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantScale {
    pub prgs: u32,
    #[serde(default)]
    pub dry_run: bool,
}

/// 404 unless `cluster` names this cluster.
fn this_cluster(cluster: &str) -> Result<(), ApiError> {
    if cluster == CLUSTER_ID {
        return Ok(());
    }
    Err(ApiError::NotFound(format!("no cluster {cluster} (this one is {CLUSTER_ID})")))
}

pub async fn scale_cluster(State(s): S, Path(cluster): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    this_cluster(&cluster)?;
    let req: ClusterScale = parse_body(&body)?;
    let state = s.cache.get();
    let now = state.nodes.len() as u64;
    let add = match (req.operation.as_str(), req.target_count) {
        ("scale_in", _) => return Err(ApiError::Conflict("scale-in needs an armed shrink plan".into())),
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
    let next = state.nodes.keys().max().copied().unwrap_or(0) + 1;
    let add_nodes =
        (next..next + add).map(|id| PlanNode { id, zone: String::new(), capacity: 1, draining: false }).collect();
    answer(&s, &state, ScaleRequest { add_nodes, prgs: req.prgs }, req.dry_run)
}

/// Nodes a cluster may be scaled to.
const MAX_NODES: u64 = 1000;

pub async fn scale_tenant(State(s): S, Path(tenant): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let req: TenantScale = parse_body(&body)?;
    let state = s.cache.get();
    answer(&s, &state, ScaleRequest { add_nodes: Vec::new(), prgs: [(tenant, req.prgs)].into() }, req.dry_run)
}

fn answer(s: &Shared, state: &ClusterState, req: ScaleRequest, dry_run: bool) -> Result<Response, ApiError> {
    let plan = plan_scale(state, &req, &sizes(s, state))?;
    if !dry_run {
        return Ok((
            StatusCode::NOT_IMPLEMENTED,
            Json(json!({
                "error": "running a scale plan is not available yet: run its steps with `tidal prgs add` and `tidal move`",
                "plan": plan_view(&plan),
            })),
        )
            .into_response());
    }
    Ok(Json(plan_view(&plan)).into_response())
}

/// Sizes for a plan: each PRG's bytes estimated from what its members
/// store (a node's stored bytes shared evenly over its replicas), and the
/// configured move rate.
fn sizes(s: &Shared, state: &ClusterState) -> Sizes {
    let reports = s.cp_reports.lock().expect("reports lock").clone();
    let mut replicas: BTreeMap<u64, u64> = BTreeMap::new();
    for p in state.placements.values() {
        for m in &p.members {
            *replicas.entry(*m).or_default() += 1;
        }
    }
    let per_replica =
        |n: &u64| reports.get(n).map_or(0, |r| r.stored_bytes / replicas.get(n).copied().unwrap_or(1).max(1));
    let prg_bytes: BTreeMap<PrgId, u64> = state
        .placements
        .values()
        .map(|p| {
            let sum: u64 = p.members.iter().map(per_replica).sum();
            (p.prg.clone(), sum / (p.members.len().max(1) as u64))
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
    let reports: BTreeMap<u64, NodeHealth> = s
        .cp_reports
        .lock()
        .expect("reports lock")
        .iter()
        .map(|(n, r)| {
            (*n, NodeHealth { ready: r.ready, reasons: r.reasons.clone(), age_ms: now.saturating_sub(r.received_ms) })
        })
        .collect();
    let limits = HealthLimits {
        report_ms: (3 * s.config.cache_sync_ms).max(5000),
        fence_budget_ms: s.config.moves.limits.fence_budget_ms,
    };
    let problems = cluster_problems(&state, &reports, now, limits);
    let rolling_back = state.moves.values().any(|m| m.phase == MovePhase::RollingBack)
        || state.replica_moves.values().any(|m| m.phase == ReplicaPhase::RollingBack);
    let moving = state.moves.values().any(|m| !m.phase.is_finished())
        || state.replica_moves.values().any(|m| !m.phase.is_finished());
    let scaling = if rolling_back {
        "rolling_back"
    } else if moving {
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
    let last = latest_slot.into_iter().chain(latest_replica).max_by_key(|l| l.0).map(|(id, kind, status, at, done)| {
        json!({"id": id, "type": kind, "status": status, "started_at": at, "completed_at": done})
    });
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
