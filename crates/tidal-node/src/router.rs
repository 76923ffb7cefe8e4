//! Client routing: find the PRG that owns a key, reach its leader, and
//! retry NotLeader / StaleEpoch / Moved / unreachable within a bounded
//! budget so clients see a pause, not an error.
//!
//! ```text
//!  RESP / HTTP ─> Router ─ plan (split multi-key by PRG)
//!                   │  for each part:
//!                   ├─ leader is this node ──> execute_local ─> Raft ─> KvMachine
//!                   └─ leader elsewhere ─────> peer transport ─> execute_local there
//!                         NotLeader{hint} ─> try the hint; unreachable ─> next member
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use tidal_core::kv::{
    found_nothing, merge, plan_read, plan_write, BlockOp, Blocking, Kind, Plan, ReadOp, Record, Reply, TxOp, Watch,
    WriteOp,
};
use tidal_core::ownership::Refusal;
use tidal_core::{ClusterState, NodeId, PrgId};
use tidal_raft::kv_entry::Outcome;
use tidal_raft::kv_proposer::{op_size, ProposeError};
use tidal_raft::read_gate::ReadError;
use tidal_raft::transport::{CallError, Request, Response, WireError};
use tidal_raft::types::encode as enc;
use tokio::time::Instant;

use crate::forward::{KvRequest, KvResponse};
use crate::node::{KvGroup, Shared};

/// How long a router waits for a forwarded request.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a router waits for a script forwarded to its PRG's leader: as
/// long as it runs, within reason. A script ends by itself or by SCRIPT
/// KILL at the node running it (its writes apply only after it ends, so
/// giving up on it early would leave its outcome unknown); every
/// [`CALL_TIMEOUT`] without its answer the connection is probed, and a
/// dead peer fails the call.
pub const SCRIPT_CALL_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long the leader works on a forwarded request: less than the router
/// waits, so the answer arrives before the router gives up on it.
pub const FORWARDED_WORK: Duration = Duration::from_millis(2500);

/// The longest a PRG leader holds a blocked client before answering
/// "nothing yet". The client's node then asks again, routing afresh, so a
/// slot that moved is followed within a round even if no wake came.
pub const BLOCK_ROUND: Duration = Duration::from_secs(1);
/// What a blocked client's round keeps of the leader's time to pop once
/// something arrives.
const POP_ROOM: Duration = Duration::from_secs(1);

/// Longest a write that woke blocked clients waits, before it answers, for
/// them to be served (see [`tidal_raft::waiters::Waiters::settled`]).
const SERVED_WITHIN: Duration = Duration::from_millis(200);

/// `writes` in consecutive runs of at most `max` bytes each, as the
/// batcher counts them; a write larger than `max` forms a run alone.
fn batches_by_bytes<T>(writes: Vec<(T, WriteOp)>, max: usize) -> Vec<Vec<(T, WriteOp)>> {
    let mut runs: Vec<Vec<(T, WriteOp)>> = Vec::new();
    let mut bytes = 0;
    for (t, op) in writes {
        let n = op_size(&op);
        match runs.last_mut() {
            Some(run) if bytes + n <= max => run.push((t, op)),
            _ => {
                runs.push(vec![(t, op)]);
                bytes = 0;
            }
        }
        bytes += n;
    }
    runs
}

/// The error a client sees when routing gave up.
fn unavailable(prg: &PrgId, why: &str) -> Reply {
    Reply::Error(format!("TRYAGAIN PRG {prg} unavailable: {why}"))
}

/// The error a client sees when a write was sent and its outcome is
/// unknown. It is not `TRYAGAIN`, which Redis Cluster clients retry on
/// their own: a blind retry of a write that did apply can undo a later
/// write by another client.
fn uncertain(why: &str) -> Reply {
    Reply::Error(format!("UNCERTAIN the write may or may not have been applied (read the key to know): {why}"))
}

impl Shared {
    /// Execute a write for `tenant`, spanning PRGs if its keys do.
    pub async fn write(self: &Arc<Self>, tenant: &str, op: WriteOp) -> Reply {
        let state = self.cache.get();
        if let Err(e) = check_tenant(&state, tenant) {
            return e;
        }
        let plan = match plan_write(op, |k| prg_of(&state, tenant, k), |k| slot_in(&state, tenant, k)) {
            Ok(p) => p,
            Err(e) => return e,
        };
        self.run_plan(tenant, plan, KvRequest::Write, false).await
    }

    /// Execute a client's consecutive (pipelined) writes for `tenant` and
    /// return their replies in order.
    ///
    /// Each later write observes the earlier ones: writes to one PRG go to
    /// its leader as one batch, proposed in order in one log entry; batches
    /// for different PRGs (disjoint keys) run concurrently. A write that
    /// spans PRGs or the whole keyspace waits for everything before it and
    /// runs alone before anything after it starts.
    pub async fn write_many(self: &Arc<Self>, tenant: &str, ops: Vec<WriteOp>) -> Vec<Reply> {
        if ops.len() == 1 {
            let op = ops.into_iter().next().expect("one op");
            return vec![self.write(tenant, op).await];
        }
        let state = self.cache.get();
        if let Err(e) = check_tenant(&state, tenant) {
            return vec![e; ops.len()];
        }
        let mut out: Vec<Option<Reply>> = vec![None; ops.len()];
        let mut run: Vec<(usize, PrgId, WriteOp)> = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            match plan_write(op, |k| prg_of(&state, tenant, k), |k| slot_in(&state, tenant, k)) {
                Ok(Plan::Single(Some(prg), op)) => run.push((i, prg, op)),
                // Refused before anything ran: no effect to order against.
                Err(e) => out[i] = Some(e),
                Ok(plan) => {
                    self.write_run(std::mem::take(&mut run), &mut out).await;
                    out[i] = Some(self.run_plan(tenant, plan, KvRequest::Write, false).await);
                }
            }
        }
        self.write_run(run, &mut out).await;
        out.into_iter().map(|r| r.unwrap_or_else(|| Reply::err("internal: a pipelined write got no reply"))).collect()
    }

    /// Send single-PRG writes, in batches per PRG (in arrival order within
    /// it), all PRGs at once; fill in `out` at each write's position. A
    /// PRG's writes go in consecutive batches of at most
    /// the node's batch bound (`max_batch_bytes`: a larger single write
    /// alone), one after the
    /// other: each batch is one log entry and one forwarded frame, and
    /// neither may grow with how much a client pipelines.
    async fn write_run(self: &Arc<Self>, run: Vec<(usize, PrgId, WriteOp)>, out: &mut [Option<Reply>]) {
        if run.is_empty() {
            return;
        }
        let mut by_prg: BTreeMap<PrgId, Vec<(usize, WriteOp)>> = BTreeMap::new();
        for (i, prg, op) in run {
            by_prg.entry(prg).or_default().push((i, op));
        }
        let mut set = tokio::task::JoinSet::new();
        for (prg, writes) in by_prg {
            let me = self.clone();
            set.spawn(async move {
                let mut done = Vec::with_capacity(writes.len());
                for chunk in batches_by_bytes(writes, me.config.max_batch_bytes()) {
                    let (positions, mut ops): (Vec<usize>, Vec<WriteOp>) = chunk.into_iter().unzip();
                    let replies = if ops.len() == 1 {
                        vec![me.send(&prg, KvRequest::Write(ops.pop().expect("one op"))).await]
                    } else {
                        let n = ops.len();
                        match me.send(&prg, KvRequest::WriteBatch(ops)).await {
                            Reply::Array(rs) if rs.len() == n => rs,
                            // Routing gave up before (or without knowing whether) the batch applied.
                            Reply::Error(e) => vec![Reply::Error(e); n],
                            other => vec![Reply::err(format!("internal: unexpected batch reply {other:?}")); n],
                        }
                    };
                    done.extend(positions.into_iter().zip(replies));
                }
                done
            });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(done) => {
                    for (i, r) in done {
                        out[i] = Some(r);
                    }
                }
                Err(e) => tracing::error!(error = %e, "pipelined write task failed"),
            }
        }
    }

    /// Execute a linearizable read for `tenant`.
    pub async fn read(self: &Arc<Self>, tenant: &str, op: ReadOp) -> Reply {
        self.read_from(tenant, op, false).await
    }

    /// [`Self::read`], served by this node's replica of the key's PRG when
    /// `follower` (a READONLY connection) and it holds one; see
    /// [`crate::follower_reads`]. A read of several PRGs (MGET, EXISTS,
    /// TOUCH) reads each PRG's part so, on its own; a keyless one (KEYS,
    /// DBSIZE) goes to the leaders.
    pub async fn read_from(self: &Arc<Self>, tenant: &str, op: ReadOp, follower: bool) -> Reply {
        let state = self.cache.get();
        if let Err(e) = check_tenant(&state, tenant) {
            return e;
        }
        let plan = match plan_read(op, |k| prg_of(&state, tenant, k), |k| slot_in(&state, tenant, k)) {
            Ok(p) => p,
            Err(e) => return e,
        };
        self.run_plan(tenant, plan, KvRequest::Read, follower).await
    }

    /// Send `req` to the leader of `prg`, or, for a read of a READONLY
    /// connection (`follower`), read it from this node's replica.
    async fn send_part(self: &Arc<Self>, prg: &PrgId, req: KvRequest, follower: bool) -> Reply {
        match req {
            KvRequest::Read(op) if follower => self.read_here(prg, op).await,
            req => self.send(prg, req).await,
        }
    }

    /// A follower read of `op` on this node's replica of `prg`, or the
    /// ordinary read when this node holds none, leads it, or finds the
    /// key's slot gone from it.
    async fn read_here(self: &Arc<Self>, prg: &PrgId, op: ReadOp) -> Reply {
        let group = prg.to_string();
        let kv = match self.kv_group(&group) {
            Some(kv) if kv.group.raft.metrics().borrow_watched().current_leader != Some(self.config.node_id) => kv,
            _ => return self.send(prg, KvRequest::Read(op)).await,
        };
        if let Err(e) = kv.follower_reads.confirm().await {
            tracing::debug!(group, error = e, "a follower read goes to the leader");
            return self.send(prg, KvRequest::Read(op)).await;
        }
        if kv.machine.check(&op.keys(), false).is_err() {
            return self.send(prg, KvRequest::Read(op)).await;
        }
        match kv.machine.read(self.host.storage(), &op, self.clock.now_ms()) {
            Ok(Ok(r)) => {
                self.follower_reads.fetch_add(1, Ordering::Relaxed);
                r
            }
            Ok(Err(_)) => self.send(prg, KvRequest::Read(op)).await,
            Err(e) => Reply::err(format!("PRG {prg}: {e}")),
        }
    }

    /// Run a transaction of `tenant` (EXEC) on the PRG that owns the slot
    /// of `key`, one of its keys: every key of `ops` and `watch` is in that
    /// slot (the connection checked), and the PRG refuses it whole
    /// otherwise.
    pub async fn exec(self: &Arc<Self>, tenant: &str, key: &[u8], watch: Option<Watch>, ops: Vec<TxOp>) -> Reply {
        let state = self.cache.get();
        if let Err(e) = check_tenant(&state, tenant) {
            return e;
        }
        match prg_of(&state, tenant, key) {
            // One write among the leader's batch of writes: applied all at
            // once, in its place in the log.
            Some(prg) => self.send(&prg, KvRequest::Write(WriteOp::Exec { watch, ops })).await,
            None => Reply::err("no PRG owns this key yet; is the cluster still starting?"),
        }
    }

    /// Run a blocking command of `tenant` (BLPOP and its kin): its write,
    /// at the leader of its keys' PRG, as soon as one of the keys it pops
    /// from holds something, or its timeout's nil.
    ///
    /// The leader holds the client a round at a time ([`BLOCK_ROUND`]) and
    /// wakes it when a write to one of its keys applies. Between rounds
    /// this node routes again, so a slot that moved or a leader that
    /// changed is followed, and the client never hangs on a node that no
    /// longer serves its keys.
    ///
    /// Once `ended` is set (CLIENT UNBLOCK), the round in progress is the
    /// last: what it popped is the answer, or else the timeout's.
    pub async fn block(self: &Arc<Self>, tenant: &str, b: &Blocking, token: u64, ended: &AtomicBool) -> Reply {
        let deadline = (b.timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(b.timeout_ms));
        // XREAD's `$` is the streams' last IDs now, once: later rounds wait
        // for what comes after them.
        let mut fixed;
        let b = match b.last_ids_query() {
            Some(query) => {
                let ids = self.read(tenant, query).await;
                if ids.is_error() {
                    return ids;
                }
                fixed = b.clone();
                if !fixed.fix_last(&ids) {
                    return Reply::err(format!("internal: the last IDs of XREAD's streams came as {ids:?}"));
                }
                &fixed
            }
            None => b,
        };
        // When it blocked: the node's clock, then (within a millisecond)
        // the order this node took its blocking commands in.
        let since = (self.clock.now_ms() << 20) | (token & 0xf_ffff);
        let mut first = true;
        loop {
            let state = self.cache.get();
            if let Err(e) = check_tenant(&state, tenant) {
                return e;
            }
            let (group_of, slot_of) = (|k: &[u8]| prg_of(&state, tenant, k), |k: &[u8]| slot_in(&state, tenant, k));
            let planned = match &b.op {
                BlockOp::Write(op) => plan_write(op.clone(), group_of, slot_of).map(|p| single(&p)),
                BlockOp::Read(op) => plan_read(op.clone(), group_of, slot_of).map(|p| single(&p)),
            };
            let prg = match planned {
                Ok(Some(Some(prg))) => prg,
                Ok(Some(None)) => return Reply::err("no PRG owns this key yet; is the cluster still starting?"),
                Ok(None) => return Reply::err("internal: a blocking command spans PRGs"),
                Err(e) => return e,
            };
            if ended.load(Ordering::SeqCst) {
                return b.timed_out();
            }
            let wait = deadline.map_or(BLOCK_ROUND, |d| d.saturating_duration_since(Instant::now()).min(BLOCK_ROUND));
            let req = KvRequest::Block { op: b.op.clone(), wait_ms: wait.as_millis() as u64, since, first, token };
            first = false;
            let reply = self.send(&prg, req).await;
            if !found_nothing(&reply) {
                return reply;
            }
            if ended.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
                return b.timed_out();
            }
        }
    }

    /// The client of blocked command `token` (`b`) left: tell the leader
    /// of its keys, so that a round in progress there does not pop for
    /// nobody.
    pub async fn unblock(self: &Arc<Self>, tenant: &str, b: &Blocking, token: u64) {
        let state = self.cache.get();
        let Some(key) = b.op.keys().first().map(|k| k.to_vec()) else { return };
        if let Some(prg) = prg_of(&state, tenant, &key) {
            let _ = self.send(&prg, KvRequest::Unblock { token }).await;
        }
    }

    /// The versions of `keys` (all of one slot) for WATCH, and the PRG
    /// that read them.
    pub async fn versions(self: &Arc<Self>, tenant: &str, keys: Vec<Vec<u8>>) -> Result<(String, Vec<u64>), Reply> {
        let reply = self.read(tenant, ReadOp::Versions { keys }).await;
        if let Reply::Array(parts) = &reply {
            if let [Reply::Bulk(prg), Reply::Array(versions)] = parts.as_slice() {
                let prg = String::from_utf8_lossy(prg).into_owned();
                let versions = versions.iter().map(|v| if let Reply::Int(n) = v { *n as u64 } else { u64::MAX });
                return Ok((prg, versions.collect()));
            }
        }
        Err(if reply.is_error() { reply } else { Reply::err(format!("internal: WATCH read {reply:?}")) })
    }

    async fn run_plan<O: Send + 'static>(
        self: &Arc<Self>,
        tenant: &str,
        plan: Plan<Option<PrgId>, O>,
        wrap: fn(O) -> KvRequest,
        follower: bool,
    ) -> Reply {
        match plan {
            Plan::Broadcast { op, merge: how } => match self.broadcast(tenant, wrap(op)).await {
                Ok(replies) => merge(&how, replies),
                Err(e) => e,
            },
            Plan::Move { from_group, from, to_group, to, nx } => match (from_group, to_group) {
                (Some(fg), Some(tg)) => self.move_key(&fg, from, &tg, to, nx).await,
                _ => Reply::err("no PRG owns this key yet; is the cluster still starting?"),
            },
            Plan::Single(prg, op) => match prg {
                Some(prg) => self.send_part(&prg, wrap(op), follower).await,
                None => Reply::err("no PRG owns this key yet; is the cluster still starting?"),
            },
            Plan::Fanout { parts, merge: how } => {
                let mut set = tokio::task::JoinSet::new();
                for (i, (prg, op)) in parts.into_iter().enumerate() {
                    let me = self.clone();
                    let req = wrap(op);
                    set.spawn(async move {
                        let r = match prg {
                            Some(prg) => me.send_part(&prg, req, follower).await,
                            None => Reply::err("no PRG owns this key yet; is the cluster still starting?"),
                        };
                        (i, r)
                    });
                }
                let mut replies: Vec<(usize, Reply)> = Vec::new();
                while let Some(r) = set.join_next().await {
                    match r {
                        Ok(x) => replies.push(x),
                        Err(e) => return Reply::err(format!("internal: {e}")),
                    }
                }
                replies.sort_by_key(|(i, _)| *i);
                merge(&how, replies.into_iter().map(|(_, r)| r).collect())
            }
        }
    }

    /// RENAME across PRGs: copy the record (TTL included) to the new key's
    /// PRG, then delete the old key. Not atomic: a reader may briefly see
    /// both keys; use hash tags for an atomic RENAME within one PRG.
    async fn move_key(self: &Arc<Self>, fg: &PrgId, from: Vec<u8>, tg: &PrgId, to: Vec<u8>, nx: bool) -> Reply {
        let record = match self.send(fg, KvRequest::Read(ReadOp::Dump { key: from.clone() })).await {
            Reply::Bulk(b) => match Record::decode(&b) {
                Ok(r) => r,
                Err(e) => return Reply::err(format!("internal: {e}")),
            },
            Reply::Nil => return Reply::err("no such key"),
            other => return other,
        };
        if nx {
            match self.send(tg, KvRequest::Read(ReadOp::Exists { keys: vec![to.clone()] })).await {
                Reply::Int(0) => {}
                Reply::Int(_) => return Reply::Int(0),
                other => return other,
            }
        }
        if let Reply::Error(e) =
            self.send(tg, KvRequest::Write(WriteOp::Restore { key: to, record: Some(record) })).await
        {
            return Reply::Error(e);
        }
        match self.send(fg, KvRequest::Write(WriteOp::Del { keys: vec![from] })).await {
            Reply::Error(e) => Reply::Error(e),
            _ if nx => Reply::Int(1),
            _ => Reply::Ok,
        }
    }

    /// Send `req` to every PRG of `tenant` and return the replies in PRG order.
    pub async fn broadcast(self: &Arc<Self>, tenant: &str, req: KvRequest) -> Result<Vec<Reply>, Reply> {
        let state = self.cache.get();
        check_tenant(&state, tenant)?;
        let prgs: Vec<PrgId> = state.prgs_of(tenant).into_iter().map(|p| p.prg.clone()).collect();
        let mut set = tokio::task::JoinSet::new();
        for (i, prg) in prgs.into_iter().enumerate() {
            let me = self.clone();
            let req = req.clone();
            set.spawn(async move { (i, me.send(&prg, req).await) });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.map_err(|e| Reply::err(format!("internal: {e}")))?);
        }
        out.sort_by_key(|(i, _)| *i);
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }

    /// Send one request to the leader of `prg`, retrying within the budget.
    ///
    /// A PRG that no longer owns a key answers `Moved`: the router
    /// refreshes its routing and sends the request where the key lives now
    /// (splitting it if its keys now live in several PRGs). A key in a
    /// hand-off answers `Fenced`: the router waits briefly and retries.
    pub async fn send(self: &Arc<Self>, prg: &PrgId, mut req: KvRequest) -> Reply {
        let deadline = Instant::now() + Duration::from_millis(self.config.retry_budget_ms);
        let mut prg = prg.clone();
        let mut group = prg.to_string();
        let mut attempt: usize = 0;
        let mut last;
        // The leader a member named when it answered that it was not: the
        // next try goes there, even if this node's routing table does not
        // list it as a member yet (a replica move it has not seen).
        let mut named: Option<NodeId> = None;
        loop {
            let state = self.cache.get();
            let Some(placement) = state.placements.get(&prg) else {
                return unavailable(&prg, "it has no placement in this node's routing table");
            };
            let target = match named.take().filter(|n| state.nodes.contains_key(n)) {
                Some(n) => n,
                None => self.leader_guess(&group, &placement.members, placement.leader_hint, attempt),
            };
            let outcome = if target == self.config.node_id {
                let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(50));
                Ok(self.execute_local(&group, state.routing_epoch, req.clone(), left).await)
            } else if self.cache.strict_fallback(Instant::now()) {
                return Reply::Error(format!(
                    "CLUSTERDOWN strict fallback: this node's control-plane cache expired and it does not lead PRG {prg}"
                ));
            } else {
                match state.nodes.get(&target) {
                    Some(n) => self.call_remote(&n.peer_addr, &group, state.routing_epoch, &req).await,
                    None => {
                        Err(CallError::NotSent { addr: format!("node {target}"), reason: "unknown address".into() })
                    }
                }
            };
            match outcome {
                Ok(KvResponse::Reply(r)) => {
                    self.leaders.lock().expect("leaders lock").insert(group, target);
                    return r;
                }
                Ok(KvResponse::ReadIndex(index)) => {
                    self.leaders.lock().expect("leaders lock").insert(group, target);
                    return Reply::Int(index as i64);
                }
                Ok(KvResponse::Batch(outcomes)) => {
                    self.leaders.lock().expect("leaders lock").insert(group, target);
                    return self.finish_batch(&prg.tenant, req, outcomes, state.routing_epoch).await;
                }
                Ok(KvResponse::NotLeader { leader }) => {
                    let mut l = self.leaders.lock().expect("leaders lock");
                    match leader {
                        Some(id) if id != target => {
                            l.insert(group.clone(), id);
                            named = Some(id);
                            attempt += 1;
                        }
                        _ => {
                            l.remove(&group);
                            attempt += 1;
                        }
                    }
                    last = format!("node {target} does not lead it");
                }
                Ok(KvResponse::StaleEpoch { current }) => {
                    last = format!("routing epoch {} is older than {current}", state.routing_epoch);
                    self.sync_now.notify_one();
                }
                Ok(KvResponse::Moved { epoch }) => {
                    last = format!("a key moved at epoch {epoch}");
                    // The table may already say where the keys went: a
                    // request that waited out a fence was sent on with the
                    // PRG it was first routed to. Only a table that still
                    // names this PRG is waited on.
                    let mut owner = self.owner_of(&prg.tenant, &req);
                    if matches!(&owner, Owner::Unknown) || matches!(&owner, Owner::One(p) if *p == prg) {
                        self.refresh_routing(state.routing_epoch, epoch, deadline).await;
                        owner = self.owner_of(&prg.tenant, &req);
                    }
                    match owner {
                        Owner::One(p) if p != prg => {
                            prg = p;
                            group = prg.to_string();
                            attempt = 0;
                            continue;
                        }
                        Owner::Several => return self.reroute(&prg.tenant, req).await,
                        _ => attempt += 1,
                    }
                }
                Ok(KvResponse::ScriptElsewhere { key }) => {
                    // Routed by the key it touched first from now on.
                    let KvRequest::Script(call) = &mut req else {
                        return Reply::err("internal: a script's answer to another request");
                    };
                    call.route = Some(key);
                    last = "the script's first key is in another PRG's slot".to_string();
                    if let Owner::One(p) = self.owner_of(&prg.tenant, &req) {
                        if p != prg {
                            prg = p;
                            group = prg.to_string();
                            attempt = 0;
                            continue;
                        }
                    }
                    self.sync_now.notify_one();
                    attempt += 1;
                }
                Ok(KvResponse::Fenced) => {
                    last = "its slot is being handed to another PRG".to_string();
                    // The hand-off may have finished with a routing change.
                    if let Owner::One(p) = self.owner_of(&prg.tenant, &req) {
                        if p != prg {
                            prg = p;
                            group = prg.to_string();
                            continue;
                        }
                    }
                    self.sync_now.notify_one();
                    attempt += 1;
                }
                Ok(KvResponse::Ambiguous(why)) => {
                    if !req.retry_safe() {
                        tracing::info!(prg = %prg, node = target, why, "a write's outcome is unknown");
                        return uncertain(&why);
                    }
                    last = why;
                    attempt += 1;
                }
                Ok(KvResponse::Unavailable(why)) => {
                    last = why;
                    self.leaders.lock().expect("leaders lock").remove(&group);
                    attempt += 1;
                }
                Ok(other) => return Reply::err(format!("internal: unexpected answer {other:?}")),
                // Nothing was sent, and the request will not get shorter.
                Err(e @ CallError::TooLarge { .. }) => return Reply::err(e.to_string()),
                // Asking again gets the same answer.
                Err(CallError::Remote(e @ WireError::AnswerTooLarge { .. })) => return Reply::err(e.to_string()),
                Err(e) => {
                    if !e.not_acted_on() && !req.retry_safe() {
                        tracing::info!(prg = %prg, node = target, error = %e, "a write's outcome is unknown");
                        return uncertain(&e.to_string());
                    }
                    last = e.to_string();
                    self.leaders.lock().expect("leaders lock").remove(&group);
                    attempt += 1;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return unavailable(&prg, &last);
            }
            let pause = Duration::from_millis((10 * attempt as u64).clamp(2, 200));
            tracing::debug!(%prg, attempt, why = %last, ?pause, "routed request retries");
            tokio::time::sleep(pause.min(deadline - now)).await;
        }
    }

    /// Wait (bounded) until the routing table reaches `moved_at` (the
    /// epoch a PRG said the key moved at), or is newer than `used` when
    /// that epoch is not newer, asking the sync loop for a fresh copy.
    async fn refresh_routing(&self, used: u64, moved_at: u64, deadline: Instant) {
        let want = if moved_at > used { moved_at } else { used + 1 };
        let mut changed = self.cache.subscribe();
        let until = deadline.min(Instant::now() + Duration::from_millis(500));
        while self.cache.get().routing_epoch < want {
            self.sync_now.notify_one();
            if tokio::time::timeout_at(until, changed.changed()).await.is_err() {
                tracing::debug!(used, moved_at, have = self.cache.get().routing_epoch, "routing refresh gave up");
                return;
            }
        }
    }

    /// Which PRG owns the keys of `req` by the current routing table.
    fn owner_of(&self, tenant: &str, req: &KvRequest) -> Owner {
        let state = self.cache.get();
        if let KvRequest::Read(ReadOp::Scan { slots, .. }) = req {
            // A SCAN page goes where its first slot lives.
            return match state.tenants.get(tenant) {
                Some(t) if slots.start < t.slots => Owner::One(t.prg_of_slot(slots.start)),
                _ => Owner::Unknown,
            };
        }
        let mut owner = None;
        for k in req.keys() {
            let Some(p) = prg_of(&state, tenant, k) else { return Owner::Unknown };
            match &owner {
                None => owner = Some(p),
                Some(o) if *o == p => {}
                Some(_) => return Owner::Several,
            }
        }
        owner.map_or(Owner::Unknown, Owner::One)
    }

    /// Plan `req` again from the current routing table (its keys moved).
    /// Boxed: routing may come back here.
    fn reroute<'a>(self: &'a Arc<Self>, tenant: &'a str, req: KvRequest) -> Boxed<'a, Reply> {
        Box::pin(async move {
            match req {
                KvRequest::Write(op) => self.write(tenant, op).await,
                KvRequest::Read(op) => self.read(tenant, op).await,
                KvRequest::WriteBatch(ops) => Reply::Array(self.write_many(tenant, ops).await),
                // Nothing yet: the blocked client's next round routes afresh.
                KvRequest::Block { .. } => Reply::NilArray,
                other => Reply::err(format!("internal: {other:?} cannot be re-routed")),
            }
        })
    }

    /// The replies of a batch whose refused writes (their slots moved, so
    /// they did not apply) are sent again where their keys live now, in
    /// their order.
    fn finish_batch<'a>(
        self: &'a Arc<Self>,
        tenant: &'a str,
        req: KvRequest,
        outcomes: Vec<Outcome>,
        epoch: u64,
    ) -> Boxed<'a, Reply> {
        Box::pin(async move {
            let KvRequest::WriteBatch(ops) = req else {
                return Reply::err("internal: a batch answer to a single request");
            };
            if outcomes.len() != ops.len() {
                return Reply::err(format!("internal: {} replies for {} writes", outcomes.len(), ops.len()));
            }
            if outcomes.iter().any(Result::is_err) {
                let deadline = Instant::now() + Duration::from_millis(self.config.retry_budget_ms);
                self.refresh_routing(epoch, 0, deadline).await;
            }
            let mut out = Vec::with_capacity(ops.len());
            for (op, outcome) in ops.into_iter().zip(outcomes) {
                out.push(match outcome {
                    Ok(r) => r,
                    Err(_) => self.write(tenant, op).await,
                });
            }
            Reply::Array(out)
        })
    }

    /// Best guess of `group`'s leader: the local replica's view, the last
    /// leader seen, the control plane's hint, then members in turn.
    pub(crate) fn leader_guess(&self, group: &str, members: &[NodeId], hint: Option<NodeId>, attempt: usize) -> NodeId {
        if let Some(g) = self.host.group(group) {
            if let Some(l) = g.raft.metrics().borrow_watched().current_leader {
                if attempt == 0 || members.contains(&l) {
                    return l;
                }
            }
        }
        if attempt == 0 {
            if let Some(l) = self.leaders.lock().expect("leaders lock").get(group) {
                return *l;
            }
            if let Some(h) = hint {
                return h;
            }
        }
        members[attempt % members.len()]
    }

    async fn call_remote(&self, addr: &str, group: &str, epoch: u64, req: &KvRequest) -> Result<KvResponse, CallError> {
        let peers = self.host.peers();
        let body = Request::App(enc(req));
        let answer = match req {
            KvRequest::Script(_) => {
                peers.call_patiently(addr, group, epoch, body, (CALL_TIMEOUT, SCRIPT_CALL_TIMEOUT)).await
            }
            _ => peers.call(addr, group, epoch, body, CALL_TIMEOUT).await,
        };
        match answer? {
            // The peer answered, so it may have acted on the request.
            Response::App(bytes) => postcard::from_bytes(&bytes).map_err(|e| CallError::Unreachable {
                addr: addr.to_string(),
                reason: format!("undecodable answer: {e}"),
            }),
            other => {
                Err(CallError::Unreachable { addr: addr.to_string(), reason: format!("unexpected answer {other:?}") })
            }
        }
    }

    /// Serve a request for a PRG this node hosts: propose writes, read
    /// after confirming leadership. A leader cut off from its quorum cannot
    /// commit, so waiting is bounded by `timeout`.
    pub async fn execute_local(
        self: &Arc<Self>,
        group: &str,
        epoch: u64,
        req: KvRequest,
        timeout: Duration,
    ) -> KvResponse {
        let Some(kv) = self.kv_group(group) else {
            return KvResponse::Unavailable(format!("node {} does not host {group}", self.config.node_id));
        };
        let g = &kv.group;
        if epoch < g.epoch {
            return KvResponse::StaleEpoch { current: g.epoch };
        }
        let leader = g.raft.metrics().borrow_watched().current_leader;
        if leader != Some(self.config.node_id) {
            return KvResponse::NotLeader { leader };
        }
        // The PRG's applied ownership is the authority, not the routing table.
        let write = !matches!(req, KvRequest::Read(_));
        if let Err(r) = kv.machine.check(&req.keys(), write) {
            return refused(r);
        }
        // Client requests count towards the PRG's load (a move's steps do not).
        let ops = match &req {
            KvRequest::WriteBatch(ops) => ops.len() as u64,
            KvRequest::Write(_) | KvRequest::Read(_) | KvRequest::Block { .. } | KvRequest::Script(_) => 1,
            _ => 0,
        };
        if ops == 0 {
            return self.execute_checked(&kv, req, timeout).await;
        }
        kv.ops.fetch_add(ops, Ordering::Relaxed);
        let began = tokio::time::Instant::now();
        let answer = self.execute_checked(&kv, req, timeout).await;
        self.latencies.record(began.elapsed());
        answer
    }

    /// [`Self::execute_local`] once the request is known to be this
    /// leader's to serve.
    async fn execute_checked(self: &Arc<Self>, kv: &KvGroup, req: KvRequest, timeout: Duration) -> KvResponse {
        match req {
            KvRequest::Write(op) => {
                let answer = propose(kv, op, timeout).await;
                kv.machine.waiters().settled(SERVED_WITHIN).await;
                answer
            }
            KvRequest::Block { op, wait_ms, since, first, token } => {
                self.block_here(kv, op, Duration::from_millis(wait_ms), (since, first, token), timeout).await
            }
            KvRequest::Unblock { token } => {
                kv.machine.waiters().cancel(token);
                KvResponse::Reply(Reply::Ok)
            }
            KvRequest::WriteBatch(ops) => match tokio::time::timeout(timeout, async {
                let outcomes = kv.proposer.propose_many(ops).await;
                kv.machine.waiters().settled(SERVED_WITHIN).await;
                outcomes
            })
            .await
            {
                Ok(Ok(outcomes)) if outcomes.iter().all(Result::is_ok) => {
                    KvResponse::Reply(Reply::Array(outcomes.into_iter().map(|o| o.expect("checked")).collect()))
                }
                Ok(Ok(outcomes)) => KvResponse::Batch(outcomes),
                Ok(Err(ProposeError::Ambiguous(why))) => KvResponse::Ambiguous(why),
                Ok(Err(ProposeError::NotLeader(leader))) => KvResponse::NotLeader { leader },
                Err(_) => KvResponse::Ambiguous(format!("no quorum committed the writes within {timeout:?}")),
            },
            KvRequest::Read(op) => match confirmed(timeout, kv.reads.confirm()).await {
                Err(answer) => answer,
                Ok(()) => match kv.machine.read(self.host.storage(), &op, self.clock.now_ms()) {
                    Ok(Ok(r)) => KvResponse::Reply(r),
                    Ok(Err(r)) => refused(r),
                    Err(e) => KvResponse::Unavailable(e.to_string()),
                },
            },
            KvRequest::ReadIndex => {
                confirmed(timeout, kv.reads.index()).await.map_or_else(|a| a, KvResponse::ReadIndex)
            }
            KvRequest::Script(call) => crate::script::at_leader(self, kv, call, timeout).await,
            other => self.execute_move_step(kv, other).await,
        }
    }

    /// A blocked client's round at this leader: propose `op` once one of
    /// the keys it pops from holds something (or holds another type, whose
    /// error is the answer), waiting up to `wait` within `budget`. The
    /// waiter registers before it looks, so a write applied in between
    /// still wakes it. Nil when nothing came, or when another client
    /// popped what came first; this node's leadership ending ends the
    /// round at once.
    async fn block_here(
        &self,
        kv: &KvGroup,
        op: BlockOp,
        wait: Duration,
        (since, mut first, token): (u64, bool, u64),
        budget: Duration,
    ) -> KvResponse {
        let began = Instant::now();
        let until = began + wait.min(budget.saturating_sub(POP_ROOM));
        let sources = op.waits_on();
        let waiter = kv.machine.waiters().register(&sources, since, token);
        let me = self.config.node_id;
        let mut metrics = kv.group.raft.metrics();
        // The first look answers a key of another type with its error, as
        // the command would; after that only the right type serves.
        loop {
            if waiter.cancelled() {
                return KvResponse::Reply(Reply::NilArray);
            }
            // Older clients blocked on these keys look (and pop) first.
            if waiter.my_turn() {
                let kind = if first { None } else { op.kind() };
                let was_first = std::mem::replace(&mut first, false);
                let ready = if op.always_looks() { Ok(true) } else { self.holds(kv, &sources, kind) };
                match ready {
                    Err(answer) => return answer,
                    Ok(true) => match if was_first { op.clone() } else { op.woken() } {
                        BlockOp::Write(w) => match propose(kv, w, budget.saturating_sub(began.elapsed())).await {
                            KvResponse::Reply(r) if found_nothing(&r) => {}
                            answer => return answer,
                        },
                        // A read changes nothing: this replica's applied
                        // state answers, as the woken client's read when it
                        // waited (the keys' types are checked afresh, and
                        // one that changed type waits on, as in Redis).
                        BlockOp::Read(read) => match kv.machine.read(self.host.storage(), &read, self.clock.now_ms()) {
                            Ok(Ok(r)) if found_nothing(&r) || (r.is_error() && !was_first) => {}
                            Ok(Ok(r)) => return KvResponse::Reply(r),
                            Ok(Err(r)) => return refused(r),
                            Err(e) => return KvResponse::Unavailable(e.to_string()),
                        },
                    },
                    Ok(false) => {}
                }
                waiter.looked();
            }
            let deposed = async {
                loop {
                    let leader = metrics.borrow_watched().current_leader;
                    if leader != Some(me) {
                        return leader;
                    }
                    if metrics.changed().await.is_err() {
                        return None;
                    }
                }
            };
            tokio::select! {
                _ = waiter.woken() => {}
                _ = tokio::time::sleep_until(until) => return KvResponse::Reply(Reply::NilArray),
                leader = deposed => return KvResponse::NotLeader { leader },
            }
        }
    }

    /// Whether one of `keys` holds something (of `kind`, when given) in
    /// this replica's applied state; `Err` is how to answer instead (its
    /// slot is not served here).
    fn holds(&self, kv: &KvGroup, keys: &[&[u8]], kind: Option<Kind>) -> Result<bool, KvResponse> {
        let now = self.clock.now_ms();
        for key in keys {
            let look = ReadOp::Type { key: key.to_vec() };
            match kv.machine.read(self.host.storage(), &look, now) {
                Err(e) => return Err(KvResponse::Unavailable(e.to_string())),
                Ok(Err(r)) => return Err(refused(r)),
                Ok(Ok(Reply::Simple(t))) if t != "none" && kind.is_none_or(|k| k.name() == t) => return Ok(true),
                Ok(Ok(_)) => {}
            }
        }
        Ok(false)
    }
}

/// The one group a plan runs in (`None` inside when no group owns its
/// keys yet); `None` when it spans groups.
fn single<G: Clone, O>(plan: &Plan<G, O>) -> Option<G> {
    match plan {
        Plan::Single(group, _) => Some(group.clone()),
        _ => None,
    }
}

/// Propose one client write at this leader, within `timeout`.
pub(crate) async fn propose(kv: &KvGroup, op: WriteOp, timeout: Duration) -> KvResponse {
    match tokio::time::timeout(timeout, kv.proposer.propose(op)).await {
        Ok(Ok(Ok(reply))) => KvResponse::Reply(reply),
        Ok(Ok(Err(r))) => refused(r),
        Ok(Err(ProposeError::Ambiguous(why))) => KvResponse::Ambiguous(why),
        Ok(Err(ProposeError::NotLeader(leader))) => KvResponse::NotLeader { leader },
        Err(_) => KvResponse::Ambiguous(format!("no quorum committed the write within {timeout:?}")),
    }
}

/// What the read gate's `confirmation` gives within `within`, or the
/// answer a request gets when it does not.
pub(crate) async fn confirmed<T>(
    within: Duration,
    confirmation: impl std::future::Future<Output = Result<T, ReadError>>,
) -> Result<T, KvResponse> {
    match tokio::time::timeout(within, confirmation).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(ReadError::NotLeader(leader))) => Err(KvResponse::NotLeader { leader }),
        Ok(Err(ReadError::Unavailable(why))) => Err(KvResponse::Unavailable(why)),
        Err(_) => Err(KvResponse::Unavailable(format!("no quorum confirmed leadership within {within:?}"))),
    }
}

/// How a leader answers a request for a slot its PRG does not serve.
pub(crate) fn refused(r: Refusal) -> KvResponse {
    match r {
        Refusal::Moved { epoch, .. } => KvResponse::Moved { epoch },
        Refusal::Fenced { .. } => KvResponse::Fenced,
    }
}

/// A future that may lead back into routing, boxed so its type is finite.
type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Which PRG a request's keys belong to.
enum Owner {
    One(PrgId),
    Several,
    Unknown,
}

fn check_tenant(state: &ClusterState, tenant: &str) -> Result<(), Reply> {
    if state.tenants.contains_key(tenant) {
        Ok(())
    } else if state.tenants.is_empty() {
        Err(Reply::Error("CLUSTERDOWN the cluster is still starting: no tenants yet".into()))
    } else {
        Err(Reply::err(format!("unknown tenant '{tenant}'")))
    }
}

fn slot_in(state: &ClusterState, tenant: &str, key: &[u8]) -> u32 {
    state.slot_of(tenant, key).unwrap_or(0)
}

fn prg_of(state: &ClusterState, tenant: &str, key: &[u8]) -> Option<PrgId> {
    state.route(tenant, key).ok().map(|r| r.placement.prg.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidal_core::kv::{Expiry, SetCond};

    fn set(i: usize, bytes: usize) -> (usize, WriteOp) {
        let op = WriteOp::Set {
            key: vec![b'k'],
            value: vec![0; bytes - 1],
            expiry: Expiry::None,
            cond: SetCond::None,
            get: false,
        };
        (i, op)
    }

    #[test]
    fn pipelined_writes_go_in_batches_bounded_by_bytes_in_their_order() {
        let sizes = [10, 10, 30, 5, 100, 1, 1];
        let writes = sizes.iter().enumerate().map(|(i, &b)| set(i, b)).collect();
        let runs = batches_by_bytes(writes, 40);
        let ids: Vec<Vec<usize>> = runs.iter().map(|r| r.iter().map(|(i, _)| *i).collect()).collect();
        // 10+10 fit, +30 does not; 30+5 fit; 100 goes alone; 1+1 fit.
        assert_eq!(ids, vec![vec![0, 1], vec![2, 3], vec![4], vec![5, 6]]);
        for run in &runs {
            let bytes: usize = run.iter().map(|(_, op)| op_size(op)).sum();
            assert!(run.len() == 1 || bytes <= 40, "{bytes}");
        }
        assert!(batches_by_bytes(Vec::<(usize, WriteOp)>::new(), 40).is_empty());
    }
}
