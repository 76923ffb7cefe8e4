//! The PRG side of slot moves: what a PRG's leader does for each step, and
//! how the move executor on the control-plane leader reaches it.
//!
//! ```text
//!  executor (CP leader) ──Pull / PullDelta──> target leader ──Export / Delta──> source leader
//!                                                  │ rows                            │
//!                                                  └──> Rows entry in target's log <─┘
//!  executor ──Slots(cmd)──> source or target leader ──> entry in that PRG's log
//! ```
//!
//! Rows travel from the source's leader to the target's leader directly;
//! the executor only carries cursors and log indexes, which it journals.

use std::sync::{Arc, Weak};
use std::time::Duration;

use std::collections::BTreeSet;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use tidal_control::{Copied, MemberChange, MoveOps, StepError};
use tidal_core::ownership::SlotCommand;
use tidal_core::slot_move::SlotMove;
use tidal_core::NodeId;
use tidal_core::PrgId;
use tidal_raft::kv_entry::{KvEntry, Row};
use tidal_raft::kv_machine::{DeltaError, KvMachine};
use tidal_raft::kv_proposer::ProposeError;
use tidal_raft::runtime::blocking;
use tidal_raft::transport::{BoxFuture, Request, Response};
use tidal_raft::types::encode as enc;
use tidal_raft::Storage;
use tokio::time::Instant;

use crate::forward::{KvRequest, KvResponse};
use crate::node::{KvGroup, Shared};

/// How long a PRG leader works on one move step.
const STEP_WORK: Duration = Duration::from_secs(8);
/// How long a caller waits for one move step: longer than a pull can take
/// on the target (fetch, then propose, each within `STEP_WORK`), so the
/// executor does not send a pull again while the first still runs.
const STEP_CALL: Duration = Duration::from_secs(20);
/// Most bytes of rows in one log entry: a client write that follows one
/// in the target's log waits for it to be sent, made durable and applied,
/// so smaller entries cost clients less (a 1 GiB scale-up's client p99
/// fell by a quarter to a third against 1 MiB) for a copy about a tenth
/// slower.
const ROWS_PER_ENTRY: usize = 256 << 10;
/// Rows entries of one copy step in flight at once.
const COPY_PIPELINE: usize = 8;

/// The answer to give for a proposal of a move step that failed, if it
/// did. Only `Applied` means the rows are in the log for good: anything
/// else (a refusal, no quorum, or this node no longer leading) fails the
/// whole step, so the caller asks again from the same point instead of
/// counting rows that never committed as copied.
fn step_failed(r: KvResponse) -> Option<KvResponse> {
    match r {
        KvResponse::Applied(_) => None,
        other => Some(other),
    }
}

/// [`step_failed`] for a copy proposal run as a task (which may itself stop).
fn failed(joined: Option<Result<KvResponse, tokio::task::JoinError>>) -> Option<KvResponse> {
    match joined? {
        Ok(r) => step_failed(r),
        Err(e) => Some(KvResponse::Unavailable(format!("a copy proposal stopped: {e}"))),
    }
}

/// A pull's answer, noting in the log one that did not land: the executor
/// asks for the same rows again.
fn pulled_or_retried(move_id: u64, r: KvResponse) -> KvResponse {
    if !matches!(r, KvResponse::Pulled { .. }) {
        tracing::info!(move_id, answer = ?r, "a pull did not land; it is asked for again");
    }
    r
}

impl Shared {
    /// Serve a move step on the leader of `kv`'s PRG.
    /// Boxed: a pull calls the source, which may be this node again.
    pub(crate) fn execute_move_step<'a>(
        &'a self,
        kv: &'a KvGroup,
        req: KvRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = KvResponse> + Send + 'a>> {
        Box::pin(self.move_step(kv, req))
    }

    async fn move_step(&self, kv: &KvGroup, req: KvRequest) -> KvResponse {
        let storage = self.host.storage();
        match req {
            KvRequest::Slots(cmd) => propose(kv, &KvEntry::Slots(cmd)).await,
            KvRequest::Export { move_id, after, max_bytes } => {
                let max = max_bytes as usize;
                let read = move |m: &KvMachine, s: &Storage| m.export_rows(s, move_id, after.as_deref(), max);
                match read_rows(kv, storage, read).await {
                    Ok((rows, done)) => KvResponse::Rows { rows, done, at: 0 },
                    Err(r) => r,
                }
            }
            KvRequest::Delta { move_id, after } => {
                match read_rows(kv, storage, move |m: &KvMachine, s: &Storage| m.delta(s, move_id, after)).await {
                    Ok((rows, at)) => KvResponse::Rows { rows, done: true, at },
                    Err(r) => r,
                }
            }
            KvRequest::Pull { move_id, source, after, max_bytes } => {
                pulled_or_retried(move_id, self.pull_copy(kv, move_id, &source, after, max_bytes).await)
            }
            KvRequest::PullDelta { move_id, source, after } => {
                pulled_or_retried(move_id, self.pull_delta(kv, move_id, &source, after).await)
            }
            KvRequest::TransferLeader { to } => self.transfer_here(&kv.group.name, to).await,
            KvRequest::Members(change) => change_members(kv, change).await,
            other => KvResponse::Unavailable(format!("internal: {other:?} is not a move step")),
        }
    }

    /// Fetch the rows the source changed after its log index `after` and
    /// propose them into `kv`'s PRG, in order.
    async fn pull_delta(&self, kv: &KvGroup, move_id: u64, source: &PrgId, after: u64) -> KvResponse {
        let Some(me) = self.me() else {
            return KvResponse::Unavailable("the node is stopping".into());
        };
        let lock = self.pull_lock(move_id);
        let _one_at_a_time = lock.lock().await;
        let started = Instant::now();
        let (rows, done, at) = match me.call_prg(source, KvRequest::Delta { move_id, after }, STEP_WORK).await {
            Ok(KvResponse::Rows { rows, done, at }) => (rows, done, at),
            Ok(other) => return other,
            Err(e) => return KvResponse::Unavailable(e),
        };
        let fetched = started.elapsed();
        let n = rows.len() as u64;
        let bytes: usize = rows.iter().map(Row::size).sum();
        let last = rows.last().map(|r| r.key.clone());
        let mut batch: Vec<Row> = Vec::new();
        let mut size = 0;
        for row in rows {
            size += row.size();
            batch.push(row);
            if size >= ROWS_PER_ENTRY {
                if let Some(r) =
                    step_failed(propose(kv, &KvEntry::Rows { move_id, rows: std::mem::take(&mut batch) }).await)
                {
                    return r;
                }
                size = 0;
            }
        }
        if !batch.is_empty() {
            if let Some(r) = step_failed(propose(kv, &KvEntry::Rows { move_id, rows: batch }).await) {
                return r;
            }
        }
        tracing::debug!(move_id, rows = n, bytes, ?fetched, proposed = ?(started.elapsed() - fetched), "rows pulled");
        KvResponse::Pulled { rows: n, bytes: bytes as u64, last, done, at }
    }

    /// Copy up to `max_bytes` of the move's rows after `after` from the
    /// source's leader into `kv`'s PRG, as a pipeline: each piece is
    /// fetched while the pieces before it are still being proposed, with up
    /// to [`COPY_PIPELINE`] entries in flight. The copy's rows name distinct
    /// keys, so the entries may commit in any order; the answer comes once
    /// every one has applied.
    async fn pull_copy(
        &self,
        kv: &KvGroup,
        move_id: u64,
        source: &PrgId,
        after: Option<Vec<u8>>,
        max_bytes: u64,
    ) -> KvResponse {
        let Some(me) = self.me() else {
            return KvResponse::Unavailable("the node is stopping".into());
        };
        let lock = self.pull_lock(move_id);
        let _one_at_a_time = lock.lock().await;
        let started = Instant::now();
        let mut in_flight = tokio::task::JoinSet::new();
        let (mut cursor, mut rows_n, mut bytes, mut done) = (after, 0u64, 0u64, false);
        while bytes < max_bytes && !done {
            let piece = (max_bytes - bytes).min(ROWS_PER_ENTRY as u64);
            let req = KvRequest::Export { move_id, after: cursor.clone(), max_bytes: piece };
            let rows = match me.call_prg(source, req, STEP_WORK).await {
                Ok(KvResponse::Rows { rows, done: end, .. }) => {
                    done = end;
                    rows
                }
                Ok(other) => return other,
                Err(e) => return KvResponse::Unavailable(e),
            };
            if let Some(last) = rows.last() {
                cursor = Some(last.key.clone());
            }
            rows_n += rows.len() as u64;
            bytes += rows.iter().map(|r| r.size() as u64).sum::<u64>();
            if rows.is_empty() {
                break;
            }
            while in_flight.len() >= COPY_PIPELINE {
                if let Some(r) = failed(in_flight.join_next().await) {
                    return r;
                }
            }
            let kv = kv.clone();
            in_flight.spawn(async move { propose(&kv, &KvEntry::Rows { move_id, rows }).await });
        }
        while let Some(joined) = in_flight.join_next().await {
            if let Some(r) = failed(Some(joined)) {
                return r;
            }
        }
        tracing::debug!(move_id, rows = rows_n, bytes, took = ?started.elapsed(), "rows copied");
        KvResponse::Pulled { rows: rows_n, bytes, last: cursor, done, at: 0 }
    }

    /// The lock that lets one pull of move `move_id` run at a time here.
    fn pull_lock(&self, move_id: u64) -> Arc<tokio::sync::Mutex<()>> {
        self.pulls.lock().expect("pulls lock").entry(move_id).or_default().clone()
    }

    fn me(&self) -> Option<Arc<Shared>> {
        self.weak_self.get().and_then(Weak::upgrade)
    }

    /// Send an internal request to the leader of `prg` and return its
    /// answer, following leadership changes within `budget`.
    pub(crate) async fn call_prg(
        self: &Arc<Self>,
        prg: &PrgId,
        req: KvRequest,
        budget: Duration,
    ) -> Result<KvResponse, String> {
        let deadline = Instant::now() + budget;
        let group = prg.to_string();
        let mut attempt = 0usize;
        let mut last = String::from("no attempt");
        // The leader a member named when it answered that it was not: the
        // next try goes there (see `Shared::send`).
        let mut named: Option<NodeId> = None;
        while Instant::now() < deadline {
            let state = self.cache.get();
            let Some(placement) = state.placements.get(prg) else {
                return Err(format!("PRG {prg} has no placement in this node's routing table"));
            };
            let target = match named.take().filter(|n| state.nodes.contains_key(n)) {
                Some(n) => n,
                None => self.leader_guess(&group, &placement.members, placement.leader_hint, attempt),
            };
            let outcome = if target == self.config.node_id {
                Ok(self.execute_local(&group, state.routing_epoch, req.clone(), STEP_WORK).await)
            } else {
                match state.nodes.get(&target) {
                    Some(n) => {
                        let body = Request::App(enc(&req));
                        match self.host.peers().call(&n.peer_addr, &group, state.routing_epoch, body, STEP_CALL).await {
                            Ok(Response::App(b)) => postcard::from_bytes(&b).map_err(|e| e.to_string()),
                            Ok(other) => Err(format!("unexpected response {other:?}")),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    None => Err(format!("node {target} has no known address")),
                }
            };
            match outcome {
                Ok(KvResponse::NotLeader { leader: Some(l) }) if l != target => {
                    self.leaders.lock().expect("leaders lock").insert(group.clone(), l);
                    last = format!("node {target} does not lead {prg}");
                    named = Some(l);
                    attempt += 1;
                    // A hint is usually right: try it at once, unless hints
                    // have been going round (an election in progress).
                    if attempt > 2 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    continue;
                }
                Ok(KvResponse::NotLeader { .. }) => last = format!("{prg} has no leader yet"),
                Ok(KvResponse::StaleEpoch { current }) => {
                    last = format!("routing epoch {} is older than {current}", state.routing_epoch);
                    self.sync_now.notify_one();
                }
                Ok(KvResponse::Unavailable(why) | KvResponse::Ambiguous(why)) => last = why,
                Ok(other) => {
                    self.leaders.lock().expect("leaders lock").insert(group, target);
                    return Ok(other);
                }
                Err(e) => last = e,
            }
            self.leaders.lock().expect("leaders lock").remove(&group);
            attempt += 1;
            tokio::time::sleep(Duration::from_millis((20 * attempt as u64).min(300))).await;
        }
        Err(format!("{prg}: {last}"))
    }
}

/// Entries applied since the last snapshot above which a new learner gets
/// a fresh one.
const STALE_SNAPSHOT_ENTRIES: u64 = 64;
/// Longest a new learner waits for that snapshot to be built, and then for
/// the log it covers to be dropped.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(15);
const PURGE_WAIT: Duration = Duration::from_secs(3);

/// A new learner takes what the log holds from its start, or the snapshot
/// when the log no longer goes back that far. The log is the PRG's whole
/// history since its last purge, rows of slots that have moved away
/// included, and a snapshot from before they moved still holds them too.
/// So first take a fresh snapshot (unless the last is only a few entries
/// old) and drop the log it covers, as far as every current member has it:
/// the learner then receives the PRG as it is now. Bounded: past the waits
/// the learner takes what there is.
async fn fresh_snapshot(kv: &KvGroup) {
    let raft = &kv.group.raft;
    let m = raft.metrics().borrow_watched().clone();
    let applied = m.last_applied.map_or(0, |l| l.index);
    let mut metrics = raft.metrics();
    if applied.saturating_sub(m.snapshot.map_or(0, |l| l.index)) > STALE_SNAPSHOT_ENTRIES {
        if let Err(e) = raft.trigger().snapshot().await {
            tracing::warn!(group = %kv.group.name, error = %e, "cannot start a snapshot for a new learner");
            return;
        }
        let built = tokio::time::timeout(SNAPSHOT_WAIT, async {
            while metrics.borrow_watched().snapshot.is_none_or(|s| s.index < applied) {
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        if built.await.is_err() {
            tracing::warn!(group = %kv.group.name, "a fresh snapshot for a new learner took too long; using the last one");
            return;
        }
    }
    let m = metrics.borrow_watched().clone();
    let Some(snapshot) = m.snapshot.map(|s| s.index) else { return };
    // Only as far as every member already has: none of them needs a snapshot.
    let me = m.id;
    let matched = m.replication.as_ref().map(|r| {
        r.iter().filter(|(id, _)| **id != me).map(|(_, l)| l.map_or(0, |l| l.index)).min().unwrap_or(snapshot)
    });
    let upto = matched.map_or(0, |n| n.min(snapshot));
    if upto <= m.purged.map_or(0, |l| l.index) {
        return;
    }
    if raft.trigger().purge_log(upto).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(PURGE_WAIT, async {
        while metrics.borrow_watched().purged.is_none_or(|p| p.index < upto) {
            if metrics.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
}

/// Make a membership change on the leader of `kv`'s PRG. Each is
/// idempotent: a change already made answers at once.
async fn change_members(kv: &KvGroup, change: MemberChange) -> KvResponse {
    let raft = &kv.group.raft;
    let m = raft.metrics().borrow_watched().clone();
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let known = |n: NodeId| membership.get_node(&n).is_some();
    let result = match change {
        MemberChange::AddLearner { node, .. } if known(node) => return KvResponse::Applied(0),
        MemberChange::AddLearner { node, addr } => {
            fresh_snapshot(kv).await;
            raft.add_learner(node, BasicNode { addr }, false).await
        }
        MemberChange::LearnerLag { node } | MemberChange::LearnerProgress { node } => {
            let last = m.last_log_index.unwrap_or(0);
            let matched = m.replication.as_ref().and_then(|r| r.get(&node).copied()).flatten().map(|l| l.index);
            let lag = match matched {
                Some(i) => last.saturating_sub(i),
                None if known(node) => last.max(1),
                None => return KvResponse::Refused(format!("node {node} is not a learner of {}", kv.group.name)),
            };
            return match change {
                MemberChange::LearnerProgress { .. } => KvResponse::Learner { lag, bytes: kv.group.sent.to(node) },
                _ => KvResponse::Applied(lag),
            };
        }
        MemberChange::ReplaceVoter { from, to } if !voters.contains(&from) && voters.contains(&to) => {
            return KvResponse::Applied(0);
        }
        MemberChange::ReplaceVoter { to, .. } if !known(to) => {
            return KvResponse::Refused(format!("node {to} is not a learner of {}", kv.group.name));
        }
        MemberChange::ReplaceVoter { from, .. } if m.current_leader == Some(from) => {
            // A leader that votes itself out leaves the group leaderless
            // until an election timeout: hand leadership over first.
            if let Some(next) = voters.iter().copied().find(|v| *v != from) {
                let _ = raft.trigger().transfer_leader(next).await;
            }
            return KvResponse::Unavailable(format!("node {from} leads {}; leadership handed off", kv.group.name));
        }
        MemberChange::ReplaceVoter { from, to } => {
            let next: BTreeSet<NodeId> = voters.iter().copied().filter(|v| *v != from).chain([to]).collect();
            raft.change_membership(ChangeMembers::ReplaceAllVoters(next), false).await
        }
        MemberChange::RemoveLearner { node } if voters.contains(&node) => {
            return KvResponse::Refused(format!("node {node} already votes in {}", kv.group.name));
        }
        MemberChange::RemoveLearner { node } if !known(node) => return KvResponse::Applied(0),
        MemberChange::RemoveLearner { node } => {
            raft.change_membership(ChangeMembers::RemoveNodes([node].into()), false).await
        }
    };
    match result {
        Ok(r) => KvResponse::Applied(r.log_id.index),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => KvResponse::NotLeader { leader: f.leader_id },
        Err(e) => KvResponse::Unavailable(e.to_string()),
    }
}

async fn propose(kv: &KvGroup, entry: &KvEntry) -> KvResponse {
    match tokio::time::timeout(STEP_WORK, kv.proposer.propose_control(entry)).await {
        Ok(Ok(Ok(index))) => KvResponse::Applied(index),
        Ok(Ok(Err(why))) => KvResponse::Refused(why),
        Ok(Err(ProposeError::Ambiguous(why))) => KvResponse::Ambiguous(why),
        Ok(Err(ProposeError::NotLeader(leader))) => KvResponse::NotLeader { leader },
        Err(_) => KvResponse::Ambiguous(format!("no quorum committed the step within {STEP_WORK:?}")),
    }
}

/// Make sure this replica still leads and has applied everything
/// committed before now, so what it reads is current.
async fn confirm(kv: &KvGroup) -> Result<(), KvResponse> {
    crate::router::confirmed(STEP_WORK, kv.reads.confirm()).await
}

/// Once this replica is confirmed as leader (see [`confirm`]), `read` the
/// rows of a move from the state file, off the async threads: a piece is a
/// megabyte, and those threads answer this node's heartbeats and clients
/// meanwhile.
async fn read_rows<T: Send + 'static>(
    kv: &KvGroup,
    storage: &Arc<Storage>,
    read: impl FnOnce(&KvMachine, &Storage) -> Result<T, DeltaError> + Send + 'static,
) -> Result<T, KvResponse> {
    confirm(kv).await?;
    let (machine, storage) = (kv.machine.clone(), storage.clone());
    match blocking(move || read(&machine, &storage)).await {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(e)) => Err(delta_error(e)),
        Err(e) => Err(KvResponse::Unavailable(format!("reading the rows: {e}"))),
    }
}

fn delta_error(e: DeltaError) -> KvResponse {
    match e {
        DeltaError::Lost { .. } => KvResponse::Lost(e.to_string()),
        DeltaError::NotExporting(_) => KvResponse::Refused(e.to_string()),
        DeltaError::Store(e) => KvResponse::Unavailable(e.to_string()),
    }
}

/// The node's router, as the move executor uses it.
pub(crate) struct NodeMoveOps(pub Weak<Shared>);

impl NodeMoveOps {
    fn shared(&self) -> Result<Arc<Shared>, StepError> {
        self.0.upgrade().ok_or_else(|| StepError::Unavailable("the node is stopping".into()))
    }
}

fn step_result(r: Result<KvResponse, String>) -> Result<KvResponse, StepError> {
    match r {
        Ok(KvResponse::Refused(why)) => Err(StepError::Refused(why)),
        Ok(KvResponse::Lost(why)) => Err(StepError::Lost(why)),
        Ok(r) => Ok(r),
        Err(e) => Err(StepError::Unavailable(e)),
    }
}

fn unexpected(r: KvResponse) -> StepError {
    StepError::Unavailable(format!("unexpected answer {r:?}"))
}

impl MoveOps for NodeMoveOps {
    fn slot_command(&self, prg: PrgId, cmd: SlotCommand) -> BoxFuture<Result<u64, StepError>> {
        let shared = self.shared();
        Box::pin(async move {
            let shared = shared?;
            match step_result(shared.call_prg(&prg, KvRequest::Slots(cmd), STEP_CALL).await)? {
                KvResponse::Applied(i) => Ok(i),
                other => Err(unexpected(other)),
            }
        })
    }

    fn copy_rows(&self, m: SlotMove, after: Option<Vec<u8>>, max_bytes: u64) -> BoxFuture<Result<Copied, StepError>> {
        let shared = self.shared();
        Box::pin(async move {
            let shared = shared?;
            let req = KvRequest::Pull { move_id: m.id, source: m.source(), after, max_bytes };
            pulled(step_result(shared.call_prg(&m.target(), req, STEP_CALL).await)?)
        })
    }

    fn members(&self, prg: PrgId, change: MemberChange) -> BoxFuture<Result<u64, StepError>> {
        self.members_impl(prg, change)
    }

    fn learner(&self, prg: PrgId, node: NodeId) -> BoxFuture<Result<(u64, u64), StepError>> {
        let shared = self.shared();
        Box::pin(async move {
            let req = KvRequest::Members(MemberChange::LearnerProgress { node });
            match step_result(shared?.call_prg(&prg, req, STEP_CALL).await)? {
                KvResponse::Learner { lag, bytes } => Ok((lag, bytes)),
                other => Err(unexpected(other)),
            }
        })
    }

    fn transfer_leader(&self, prg: PrgId, to: NodeId) -> BoxFuture<Result<(), StepError>> {
        let shared = self.shared();
        Box::pin(async move {
            match step_result(shared?.call_prg(&prg, KvRequest::TransferLeader { to }, STEP_CALL).await)? {
                KvResponse::Leader(Some(l)) if l == to => Ok(()),
                other => Err(StepError::Unavailable(format!("leadership of {prg} did not move to {to}: {other:?}"))),
            }
        })
    }

    fn catch_up(&self, m: SlotMove, after: u64) -> BoxFuture<Result<Copied, StepError>> {
        let shared = self.shared();
        Box::pin(async move {
            let shared = shared?;
            let req = KvRequest::PullDelta { move_id: m.id, source: m.source(), after };
            pulled(step_result(shared.call_prg(&m.target(), req, STEP_CALL).await)?)
        })
    }
}

impl NodeMoveOps {
    fn members_impl(&self, prg: PrgId, change: MemberChange) -> BoxFuture<Result<u64, StepError>> {
        let shared = self.shared();
        Box::pin(async move {
            let shared = shared?;
            match step_result(shared.call_prg(&prg, KvRequest::Members(change), STEP_CALL).await)? {
                KvResponse::Applied(i) => Ok(i),
                other => Err(unexpected(other)),
            }
        })
    }
}

fn pulled(r: KvResponse) -> Result<Copied, StepError> {
    match r {
        KvResponse::Pulled { rows, bytes, last, done, at } => Ok(Copied { rows, bytes, last, done, at }),
        other => Err(unexpected(other)),
    }
}

#[cfg(test)]
#[path = "move_ops_tests.rs"]
mod tests;
