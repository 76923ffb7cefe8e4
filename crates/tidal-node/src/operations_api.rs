//! The operations API: scaling operations, running and finished.
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v1/operations` | every operation the control plane keeps, newest last |
//! | `GET /api/v1/operations/{id}` | one: phase, steps with their moves and timings, bytes, events |
//! | `POST /api/v1/operations/{id}/cancel` | 202; the operation rolls back what it still can |

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tidal_control::CpCommand;
use tidal_core::operation::{OpId, OpPhase, OpStep, Operation, StepKind};
use tidal_core::ClusterState;

use crate::moves_api::{fresh, slot_ranges, ApiError};
use crate::node::Shared;
use crate::scale_api::plan_view;

type S = State<Arc<Shared>>;

/// 202 with the operation's id and where to follow it.
pub fn accepted(id: OpId, extra: Value) -> Response {
    let location = format!("/api/v1/operations/{id}");
    let mut body = json!({ "id": id, "location": location });
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response()
}

fn parse_id(id: &str) -> Result<OpId, ApiError> {
    id.parse().map_err(|_| ApiError::BadRequest(format!("invalid operation id '{id}'")))
}

pub async fn list_operations(State(s): S) -> Result<Response, ApiError> {
    let state = fresh(&s).await?;
    let ops: Vec<Value> = state.operations.values().map(|o| summary(&state, o)).collect();
    Ok(Json(json!({ "operations": ops })).into_response())
}

pub async fn get_operation(State(s): S, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let state = fresh(&s).await?;
    let op = state.operations.get(&id).ok_or_else(|| ApiError::NotFound(format!("no operation {id}")))?;
    Ok(Json(view(&state, op)).into_response())
}

pub async fn cancel_operation(State(s): S, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let state = fresh(&s).await?;
    if !state.operations.contains_key(&id) {
        return Err(ApiError::NotFound(format!("no operation {id}")));
    }
    s.cp.propose(CpCommand::CancelOperation { id }).await?;
    Ok(accepted(id, json!({})))
}

/// Bytes the moves of `step` have carried so far.
fn step_bytes(state: &ClusterState, step: &OpStep) -> u64 {
    step.moves
        .iter()
        .map(|id| match (state.moves.get(id), state.replica_moves.get(id)) {
            (Some(m), _) => m.progress.bytes,
            (_, Some(m)) => m.bytes,
            _ => 0,
        })
        .sum()
}

/// The status words of the scaling API for an operation's phase.
pub fn status_of(phase: OpPhase) -> &'static str {
    match phase {
        OpPhase::Done => "succeeded",
        OpPhase::RolledBack => "rolled_back",
        OpPhase::Cancelled => "cancelled",
        OpPhase::Failed => "failed",
        OpPhase::RollingBack => "rolling_back",
        _ => "running",
    }
}

/// An operation in a line's worth of fields.
pub fn summary(state: &ClusterState, op: &Operation) -> Value {
    let done = op.steps.iter().filter(|s| s.state == tidal_core::operation::StepState::Done).count();
    let bytes: u64 = op.steps.iter().map(|s| step_bytes(state, s)).sum();
    json!({
        "id": op.id,
        "type": op.kind,
        "status": status_of(op.phase),
        "phase": op.phase.name(),
        "stepsDone": done,
        "steps": op.steps.len(),
        "bytesMoved": bytes,
        "bytesPlanned": op.plan.total_bytes,
        "addNodes": op.plan.add_nodes.iter().map(|n| n.id).collect::<Vec<_>>(),
        "startedAt": op.created_ms,
        "completedAt": op.finished_ms,
        "cancelRequested": op.cancel_requested,
        "error": op.error,
    })
}

/// Everything about an operation: its summary, plan, steps, phase times
/// and events.
pub fn view(state: &ClusterState, op: &Operation) -> Value {
    let steps: Vec<Value> = op
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (kind, what, planned) = match s.kind {
                StepKind::Slots(k) => {
                    let m = &op.plan.slot_moves[k];
                    ("slots", format!("slots {} of {} to {}", slot_ranges(&m.slots), m.from, m.to), m.bytes)
                }
                StepKind::Replica(k) => {
                    let m = &op.plan.replica_moves[k];
                    ("replica", format!("{} from node {} to node {}", m.step.prg, m.step.from, m.step.to), m.bytes)
                }
            };
            json!({
                "index": i, "kind": kind, "what": what, "state": s.state.name(), "moves": s.moves,
                "bytesPlanned": planned, "bytes": step_bytes(state, s),
                "startedMs": s.started_ms, "finishedMs": s.finished_ms,
            })
        })
        .collect();
    let mut out = summary(state, op);
    let extra = json!({
        "plan": plan_view(&op.plan),
        "budget": { "perNode": op.budget.per_node, "cluster": op.budget.cluster },
        "gateTimeoutMs": op.gate_timeout_ms,
        "joinTimeoutMs": op.join_timeout_ms,
        "phaseStartedAt": op.phase_started_ms,
        "phaseTimes": op.phase_times.iter().map(|(p, ms)| json!({"phase": p.name(), "ms": ms})).collect::<Vec<_>>(),
        "stepList": steps,
        "events": op.events.iter().map(|e| json!({"atMs": e.at_ms, "text": e.text})).collect::<Vec<_>>(),
    });
    if let (Some(o), Value::Object(e)) = (out.as_object_mut(), extra) {
        o.extend(e);
    }
    out
}
