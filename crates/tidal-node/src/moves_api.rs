//! The admin API of data movement: slot moves, new PRGs and leader
//! transfer.
//!
//! | request | answer |
//! |---|---|
//! | `POST /api/v1/moves` `{"tenant","slots":"0-63","to":"default:2"}` | 202, `{"id"}`, `Location` |
//! | `POST /api/v1/moves` `{"kind":"replica","prg":"default:1","from":3,"to":4}` | 202, `{"id"}`, `Location` |
//! | `GET /api/v1/moves`, `GET /api/v1/moves/{id}` | the moves, with state, bytes, rate, timings |
//! | `POST /api/v1/moves/{id}/cancel` | 202, or 409 once the move has committed |
//! | `POST /api/v1/tenants/{t}/prgs` `{"count":4,"members":[1,4,5]}` | 201, the new PRG ids |
//! | `POST /api/v1/prgs/{prg}/leader` `{"to":2}` | 200 once node 2 leads |
//! | `PUT /api/v1/debug/failpoints/{name}` (body: actions) | 200; 404 without the `failpoints` build |
//! | `GET /api/v1/debug/failpoints` | the fail points that are set |
//!
//! Bad input is answered 400 (malformed), 404 (unknown tenant, PRG, node
//! or move) or 409 (conflicts with the cluster's state), and changes
//! nothing. Errors map to statuses here, in [`ApiError`], and nowhere else.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use openraft::async_runtime::WatchReceiver;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tidal_control::{CpCommand, CpError, CpReply};
use tidal_core::ownership::MoveId;
use tidal_core::replica_move::{check_replica_move, ReplicaMove, ReplicaMoveError, ReplicaPhase};
use tidal_core::slot_move::{check_new_move, parse_slots, MoveError, MovePhase, SlotMove};
use tidal_core::{ClusterState, NodeId, PrgId};
use tokio::time::Instant;

use crate::forward::{KvRequest, KvResponse};
use crate::node::Shared;

type S = State<Arc<Shared>>;

/// Why an admin request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

impl From<MoveError> for ApiError {
    fn from(e: MoveError) -> Self {
        match e {
            MoveError::UnknownTenant(_) | MoveError::UnknownPrg(_) => ApiError::NotFound(e.to_string()),
            MoveError::OtherTenant { .. } | MoveError::NoSlots | MoveError::OutOfRange { .. } => {
                ApiError::BadRequest(e.to_string())
            }
            MoveError::SeveralSources { .. }
            | MoveError::NotOwned { .. }
            | MoveError::SameTarget(_)
            | MoveError::AlreadyMoving { .. } => ApiError::Conflict(e.to_string()),
        }
    }
}

impl From<CpError> for ApiError {
    fn from(e: CpError) -> Self {
        match e {
            // The control plane re-checks every command against its state:
            // a refusal there means the cluster changed since our check.
            CpError::Refused(why) => ApiError::Conflict(why),
            CpError::Unavailable(why) => ApiError::Unavailable(why),
            CpError::NotLeader => ApiError::Unavailable(e.to_string()),
        }
    }
}

/// A JSON request body, whatever content type the client declared
/// (`curl -d` sends a form type).
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")))
}

/// Slots as a list or as text such as `"0-63,100"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SlotsArg {
    List(Vec<u32>),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct MoveRequest {
    #[serde(default = "slots_kind")]
    pub kind: String,
    pub tenant: String,
    pub slots: SlotsArg,
    /// The source PRG; by default whichever PRG owns all the slots.
    pub from: Option<String>,
    pub to: String,
}

fn slots_kind() -> String {
    "slots".into()
}

/// `{"kind":"replica","prg":"default:1","from":3,"to":4}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct ReplicaMoveRequest {
    pub kind: String,
    pub prg: String,
    pub from: NodeId,
    pub to: NodeId,
}

impl From<ReplicaMoveError> for ApiError {
    fn from(e: ReplicaMoveError) -> Self {
        match e {
            ReplicaMoveError::UnknownPrg(_) | ReplicaMoveError::UnknownNode(_) => ApiError::NotFound(e.to_string()),
            ReplicaMoveError::NotAMember { .. }
            | ReplicaMoveError::AlreadyAMember { .. }
            | ReplicaMoveError::Draining(_)
            | ReplicaMoveError::SameZone { .. }
            | ReplicaMoveError::Busy { .. } => ApiError::Conflict(e.to_string()),
        }
    }
}

/// A replica move as the admin API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaMoveView {
    pub id: MoveId,
    pub kind: &'static str,
    pub prg: String,
    pub from: NodeId,
    pub to: NodeId,
    pub state: &'static str,
    /// Entries the learner was behind at the last look.
    pub lag: Option<u64>,
    /// Bytes the PRG's leader had sent the learner at the last look.
    pub bytes: u64,
    pub bytes_per_sec: u64,
    pub copy_fraction: f64,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub finished_ms: Option<u64>,
    pub elapsed_ms: u64,
    pub cancel_requested: bool,
    pub error: Option<String>,
}

pub fn replica_move_view(m: &ReplicaMove, now_ms: u64) -> ReplicaMoveView {
    ReplicaMoveView {
        id: m.id,
        kind: "replica",
        prg: m.prg.to_string(),
        from: m.from,
        to: m.to,
        state: m.phase.name(),
        lag: m.lag,
        bytes: m.bytes,
        bytes_per_sec: (m.bytes * 1000).checked_div(m.updated_ms.saturating_sub(m.created_ms)).unwrap_or(0),
        copy_fraction: match m.phase {
            ReplicaPhase::AddingLearner => 0.0,
            _ => 1.0,
        },
        created_ms: m.created_ms,
        updated_ms: m.updated_ms,
        finished_ms: m.finished_ms,
        elapsed_ms: m.finished_ms.unwrap_or(now_ms).saturating_sub(m.created_ms),
        cancel_requested: m.cancel_requested,
        error: m.error.clone(),
    }
}

/// Every move of `state` as JSON, newest first.
fn all_moves(state: &ClusterState, now_ms: u64) -> Vec<serde_json::Value> {
    let mut out: Vec<(MoveId, serde_json::Value)> = state
        .moves
        .values()
        .map(|m| (m.id, json!(move_view(m, now_ms))))
        .chain(state.replica_moves.values().map(|m| (m.id, json!(replica_move_view(m, now_ms)))))
        .collect();
    out.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    out.into_iter().map(|(_, v)| v).collect()
}

/// A move as the admin API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MoveView {
    pub id: MoveId,
    pub kind: &'static str,
    pub tenant: String,
    /// The slots, as ranges (`0-63,100`).
    pub slots: String,
    pub slot_count: usize,
    pub from: String,
    pub to: String,
    pub state: &'static str,
    pub bytes: u64,
    pub rows: u64,
    pub bytes_per_sec: u64,
    /// How far the first copy has come through the slots (0 to 1).
    pub copy_fraction: f64,
    pub catch_up_rounds: u32,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub fenced_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub elapsed_ms: u64,
    pub fence_window_ms: Option<u64>,
    pub commit_epoch: Option<u64>,
    pub cancel_requested: bool,
    pub error: Option<String>,
}

/// `0,1,2,5,7,8` as `0-2,5,7-8`.
pub fn slot_ranges(slots: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < slots.len() {
        let start = slots[i];
        let mut end = start;
        while i + 1 < slots.len() && slots[i + 1] == end + 1 {
            i += 1;
            end = slots[i];
        }
        out.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
        i += 1;
    }
    out.join(",")
}

pub fn move_view(m: &SlotMove, now_ms: u64) -> MoveView {
    let end = m.finished_ms.unwrap_or(now_ms);
    let elapsed_ms = end.saturating_sub(m.created_ms);
    MoveView {
        id: m.id,
        kind: "slots",
        tenant: m.tenant.clone(),
        slots: slot_ranges(&m.slots),
        slot_count: m.slots.len(),
        from: m.source().to_string(),
        to: m.target().to_string(),
        state: m.phase.name(),
        bytes: m.progress.bytes,
        rows: m.progress.rows,
        bytes_per_sec: (m.progress.bytes * 1000).checked_div(elapsed_ms).unwrap_or(0),
        copy_fraction: copy_fraction(m),
        catch_up_rounds: m.progress.rounds,
        created_ms: m.created_ms,
        updated_ms: m.updated_ms,
        fenced_ms: m.fenced_ms,
        finished_ms: m.finished_ms,
        elapsed_ms,
        fence_window_ms: m.fence_window_ms(),
        commit_epoch: m.commit_epoch,
        cancel_requested: m.cancel_requested,
        error: m.error.clone(),
    }
}

fn copy_fraction(m: &SlotMove) -> f64 {
    if m.progress.copied || m.phase != MovePhase::Copying {
        return 1.0;
    }
    let Some(cursor) = &m.progress.cursor else { return 0.0 };
    let mut b = [0u8; 4];
    let n = cursor.len().min(4);
    b[..n].copy_from_slice(&cursor[..n]);
    let slot = u32::from_be_bytes(b);
    let done = m.slots.iter().filter(|s| **s < slot).count();
    done as f64 / m.slots.len().max(1) as f64
}

fn parse_prg(s: &str) -> Result<PrgId, ApiError> {
    s.parse().map_err(|e: tidal_core::ids::IdError| ApiError::BadRequest(e.to_string()))
}

/// The cluster state as the control plane has it now.
pub(crate) async fn fresh(s: &Shared) -> Result<ClusterState, ApiError> {
    let state = s.cp.read().await?;
    s.cache.confirm(state.clone(), Instant::now());
    Ok(state)
}

/// The `kind` of a move request, read first to choose the body's shape
/// (the rest of the body is skipped, not built).
#[derive(Debug, Deserialize)]
#[serde(expecting = "a JSON object")]
pub struct MoveKind {
    #[serde(default)]
    pub kind: Option<String>,
}

pub async fn start_move(State(s): S, body: Bytes) -> Result<Response, ApiError> {
    let kind: MoveKind = parse_body(&body)?;
    if kind.kind.as_deref() == Some("replica") {
        return start_replica_move(&s, parse_body(&body)?).await;
    }
    let req: MoveRequest = parse_body(&body)?;
    if req.kind != "slots" {
        return Err(ApiError::BadRequest(format!("unknown move kind '{}': \"slots\" or \"replica\"", req.kind)));
    }
    let slots = match req.slots {
        SlotsArg::List(mut v) => {
            v.sort_unstable();
            v.dedup();
            v
        }
        SlotsArg::Text(t) => parse_slots(&t).map_err(ApiError::BadRequest)?,
    };
    let to = parse_prg(&req.to)?;
    let from = match req.from.as_deref().map(parse_prg).transpose()? {
        Some(p) if p.tenant != req.tenant => {
            return Err(ApiError::BadRequest(format!("source PRG {p} is not of tenant '{}'", req.tenant)));
        }
        Some(p) => Some(p.index),
        None => None,
    };
    let state = fresh(&s).await?;
    if let Some(f) = from {
        let p = PrgId::new(req.tenant.clone(), f);
        if !state.placements.contains_key(&p) {
            return Err(MoveError::UnknownPrg(p).into());
        }
    }
    let active: Vec<&SlotMove> = state.moves.values().filter(|m| !m.phase.is_finished()).collect();
    check_new_move(&state, &req.tenant, &slots, from, &to, &active)?;
    let cmd = CpCommand::StartMove { tenant: req.tenant, slots, from, to };
    match s.cp.propose(cmd).await? {
        CpReply::MoveStarted { id, .. } => Ok(accepted(id)),
        other => Err(ApiError::Unavailable(format!("unexpected answer {other:?}"))),
    }
}

async fn start_replica_move(s: &Shared, req: ReplicaMoveRequest) -> Result<Response, ApiError> {
    let prg = parse_prg(&req.prg)?;
    let state = fresh(s).await?;
    check_replica_move(&state, &prg, req.from, req.to, state.busy_with(&prg))?;
    match s.cp.propose(CpCommand::StartReplicaMove { prg, from: req.from, to: req.to }).await? {
        CpReply::MoveStarted { id, .. } => Ok(accepted(id)),
        other => Err(ApiError::Unavailable(format!("unexpected answer {other:?}"))),
    }
}

fn accepted(id: MoveId) -> Response {
    let location = format!("/api/v1/moves/{id}");
    (StatusCode::ACCEPTED, [(header::LOCATION, location.clone())], Json(json!({ "id": id, "location": location })))
        .into_response()
}

pub async fn list_moves(State(s): S) -> Result<Response, ApiError> {
    let state = fresh(&s).await?;
    Ok(Json(all_moves(&state, s.clock.now_ms())).into_response())
}

pub async fn get_move(State(s): S, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: MoveId = id.parse().map_err(|_| ApiError::BadRequest(format!("invalid move id '{id}'")))?;
    let state = fresh(&s).await?;
    let now = s.clock.now_ms();
    if let Some(m) = state.replica_moves.get(&id) {
        return Ok(Json(replica_move_view(m, now)).into_response());
    }
    let m = state.moves.get(&id).ok_or_else(|| ApiError::NotFound(format!("no move {id}")))?;
    Ok(Json(move_view(m, now)).into_response())
}

pub async fn cancel_move(State(s): S, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: MoveId = id.parse().map_err(|_| ApiError::BadRequest(format!("invalid move id '{id}'")))?;
    let state = fresh(&s).await?;
    if !state.moves.contains_key(&id) && !state.replica_moves.contains_key(&id) {
        return Err(ApiError::NotFound(format!("no move {id}")));
    }
    s.cp.propose(CpCommand::CancelMove { id }).await?;
    Ok(accepted(id))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct AddPrgsRequest {
    pub count: u32,
    pub members: Option<Vec<NodeId>>,
}

pub async fn add_prgs(State(s): S, Path(tenant): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let req: AddPrgsRequest = parse_body(&body)?;
    let state = fresh(&s).await?;
    if !state.tenants.contains_key(&tenant) {
        return Err(ApiError::NotFound(format!("unknown tenant '{tenant}'")));
    }
    if let Some(m) = &req.members {
        if let Some(unknown) = m.iter().find(|id| !state.nodes.contains_key(id)) {
            return Err(ApiError::NotFound(format!("unknown node {unknown}")));
        }
    }
    let cmd =
        CpCommand::AddPrgs { tenant, count: req.count, members: req.members, expect_epoch: Some(state.routing_epoch) };
    match s.cp.propose(cmd).await {
        Ok(CpReply::PrgsAdded { prgs, routing_epoch }) => {
            s.sync_now.notify_one();
            let ids: Vec<String> = prgs.iter().map(ToString::to_string).collect();
            Ok((StatusCode::CREATED, Json(json!({ "prgs": ids, "routingEpoch": routing_epoch }))).into_response())
        }
        Ok(other) => Err(ApiError::Unavailable(format!("unexpected answer {other:?}"))),
        // Count and member rules are checked by the control plane.
        Err(CpError::Refused(why)) if why.starts_with("routing epoch") => Err(ApiError::Conflict(why)),
        Err(CpError::Refused(why)) => Err(ApiError::BadRequest(why)),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct LeaderRequest {
    pub to: NodeId,
}

/// How long a leader transfer may take before the API says so.
const TRANSFER_WAIT: Duration = Duration::from_secs(5);

pub async fn transfer_leader(State(s): S, Path(prg): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let req: LeaderRequest = parse_body(&body)?;
    let prg = parse_prg(&prg)?;
    let state = fresh(&s).await?;
    let placement =
        state.placements.get(&prg).ok_or_else(|| ApiError::NotFound(format!("PRG {prg} does not exist")))?;
    if !state.nodes.contains_key(&req.to) {
        return Err(ApiError::NotFound(format!("unknown node {}", req.to)));
    }
    if !placement.members.contains(&req.to) {
        return Err(ApiError::Conflict(format!(
            "node {} holds no replica of {prg} (members {:?})",
            req.to, placement.members
        )));
    }
    let deadline = Instant::now() + TRANSFER_WAIT;
    loop {
        match s.call_prg(&prg, KvRequest::TransferLeader { to: req.to }, TRANSFER_WAIT).await {
            Ok(KvResponse::Leader(Some(l))) if l == req.to => {
                return Ok(Json(json!({ "prg": prg.to_string(), "leader": l })).into_response());
            }
            Ok(KvResponse::Refused(why)) => return Err(ApiError::Conflict(why)),
            Ok(_) | Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Ok(other) => return Err(ApiError::Unavailable(format!("{prg}: leadership did not move: {other:?}"))),
            Err(e) => return Err(ApiError::Unavailable(e)),
        }
    }
}

/// Set a fail point of this node's move executor (test builds only; see
/// [`tidal_control::failpoint`]).
pub async fn set_failpoint(Path(name): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let actions = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("fail point actions must be UTF-8 text".into()))?
        .trim();
    if actions.is_empty() {
        return Err(ApiError::BadRequest("no actions given (`off` clears a fail point)".into()));
    }
    match tidal_control::failpoint::configure(&name, actions) {
        Ok(()) => {
            tracing::warn!(fail_point = %name, actions, "fail point set");
            Ok(Json(json!({ "name": name, "actions": actions })).into_response())
        }
        Err(e) if cfg!(feature = "failpoints") && !e.starts_with("no fail point") => Err(ApiError::BadRequest(e)),
        Err(e) => Err(ApiError::NotFound(e)),
    }
}

pub async fn list_failpoints() -> Response {
    let set: serde_json::Map<String, serde_json::Value> =
        tidal_control::failpoint::list().into_iter().map(|(n, a)| (n, a.into())).collect();
    Json(json!({ "compiledIn": cfg!(feature = "failpoints"), "set": set })).into_response()
}

impl Shared {
    /// On the leader of `group`: hand leadership to `to` and wait briefly
    /// for it to take over.
    pub(crate) async fn transfer_here(&self, group: &str, to: NodeId) -> KvResponse {
        let Some(g) = self.host.group(group) else {
            return KvResponse::Unavailable(format!("node {} does not host {group}", self.config.node_id));
        };
        let voters: Vec<NodeId> =
            g.raft.metrics().borrow_watched().membership_config.membership().voter_ids().collect();
        if !voters.contains(&to) {
            return KvResponse::Refused(format!("node {to} is not a voter of {group} (voters {voters:?})"));
        }
        if to == self.config.node_id {
            return KvResponse::Leader(Some(to));
        }
        if let Err(e) = g.raft.trigger().transfer_leader(to).await {
            return KvResponse::Unavailable(e.to_string());
        }
        let mut metrics = g.raft.metrics();
        let wait = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                let leader = metrics.borrow_watched().current_leader;
                if leader.is_some_and(|l| l != self.config.node_id) {
                    return leader;
                }
                if metrics.changed().await.is_err() {
                    return None;
                }
            }
        });
        KvResponse::Leader(wait.await.ok().flatten())
    }
}

#[cfg(test)]
#[path = "moves_api_tests.rs"]
mod tests;
