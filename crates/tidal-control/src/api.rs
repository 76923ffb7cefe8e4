//! Talking to the control plane from any node.
//!
//! ```text
//!  node ──CpRequest──> a _cp member ──(leader?)──> Raft _cp ──> CpMachine
//!    ^                      │ no: NotLeader{leader addr}
//!    └──── CpClient follows the hint, within a bounded budget
//! ```
//!
//! Requests travel as app frames of group `_cp` on the peer transport.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, LinearizableReadError, RaftError};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use tidal_core::ids::CP_GROUP;
use tidal_core::{ClusterState, NodeId, PrgId, Registration};
use tidal_raft::transport::{PeerId, Request, Response};
use tidal_raft::types::encode as enc;
use tidal_raft::{Proposal, RaftHost};
use tokio::time::Instant;

use crate::command::{CpCommand, CpReply};
use crate::cp_machine::CpMachine;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CpRequest {
    /// A linearizable read of the whole cluster state.
    Read,
    Propose(CpCommand),
    /// Register the sender and return the cluster state; any node accepts
    /// this and relays it to the control plane.
    Join(Registration),
    /// A long poll: the state as soon as its version is past `after`, or
    /// after `wait_ms` that nothing changed (both confirmed by the leader).
    /// It carries node `node`'s report of itself.
    Watch {
        after: u64,
        wait_ms: u64,
        node: NodeId,
        report: NodeReport,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CpResponse {
    State(ClusterState),
    Reply(CpReply),
    NotLeader {
        leader: Option<NodeId>,
        addr: Option<String>,
    },
    Unavailable(String),
    /// The answer to `Watch`: the state if it changed (else its version),
    /// and what each node last reported of itself.
    Watched {
        state: Option<ClusterState>,
        version: u64,
        reports: BTreeMap<NodeId, NodeReport>,
    },
}

/// What a node tells the control plane of itself with every watch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    /// The routing epoch the node has applied (its replicas started or
    /// stopped, its routing on that epoch).
    pub applied_epoch: u64,
    /// Bytes the node stores (its data directory: logs, state files and
    /// snapshots, with the pages the files keep after rows leave them).
    pub stored_bytes: u64,
    /// About how many bytes of rows the node's replicas hold: its data,
    /// whatever its files' sizes.
    #[serde(default)]
    pub data_bytes: u64,
    /// Whether the node is ready (`/readyz`): its control-plane cache is
    /// Fresh, strict fallback is off, its groups have leaders and their
    /// lags are under the limit.
    pub ready: bool,
    /// Why it is not, as `/why` says.
    pub reasons: Vec<String>,
    /// When the control-plane leader took this report (its clock, ms).
    pub received_ms: u64,
    /// About how many bytes of rows each PRG this node leads holds (what a
    /// scale plan estimates its moves with).
    pub prg_bytes: BTreeMap<PrgId, u64>,
    /// The load the node measured on itself (what the autoscaler reads).
    pub load: tidal_core::autoscale::signals::NodeLoad,
}

impl NodeReport {
    /// This report as the autoscaler reads it; `fresh` when it arrived
    /// within the health check's limit.
    pub fn reported(&self, fresh: bool) -> tidal_core::autoscale::signals::Reported {
        tidal_core::autoscale::signals::Reported {
            load: self.load.clone(),
            ready: self.ready,
            fresh,
            stored_bytes: self.stored_bytes,
            data_bytes: self.data_bytes,
            prg_bytes: self.prg_bytes.clone(),
        }
    }

    /// This report as the health check reads it, at `now_ms` (the
    /// control-plane leader's clock, as `received_ms`).
    pub fn health(&self, now_ms: u64) -> tidal_core::health::NodeHealth {
        tidal_core::health::NodeHealth {
            ready: self.ready,
            reasons: self.reasons.clone(),
            age_ms: now_ms.saturating_sub(self.received_ms),
        }
    }
}

/// What a watch saw.
#[derive(Clone, Debug)]
pub struct Watched {
    /// The state, when it is newer than the version asked after.
    pub state: Option<ClusterState>,
    pub version: u64,
    /// What each node last reported of itself to the leader.
    pub reports: BTreeMap<NodeId, NodeReport>,
}

/// Longest a proposal may take to commit.
const PROPOSE_BUDGET: Duration = Duration::from_secs(5);

/// Longest a watch waits for a change before answering that none came.
const MAX_WATCH: Duration = Duration::from_secs(10);

/// Why a control-plane call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CpError {
    #[error("control plane unavailable: {0}")]
    Unavailable(String),
    #[error("control plane refused: {0}")]
    Refused(String),
    /// A proposal made as the leader ([`ControlPlane::propose_as_leader`])
    /// found this node no longer leads.
    #[error("this node no longer leads the control plane")]
    NotLeader,
}

/// The control plane as seen from one node: the local `_cp` replica if this
/// node hosts one, and a client for reaching the leader otherwise.
pub struct ControlPlane {
    host: Arc<RaftHost>,
    /// The local `_cp` replica's machine, while this node hosts one.
    machine: Mutex<Option<Arc<CpMachine>>>,
    /// Peer addresses of `_cp` members, learned from flags and cluster state.
    members: Mutex<BTreeMap<NodeId, String>>,
    /// Addresses tried after the members: the node a joining node joined
    /// through. A node that joined while the cluster was still forming may
    /// have been handed a state that names no members yet; without this it
    /// would know nobody to ask for a newer one.
    seeds: Mutex<Vec<String>>,
    leader: Mutex<Option<String>>,
    now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// On the leader: what each node last reported of itself, and when
    /// on this process's monotonic clock.
    reports: Mutex<BTreeMap<NodeId, (NodeReport, tokio::time::Instant)>>,
}

const CALL_TIMEOUT: Duration = Duration::from_secs(3);

impl ControlPlane {
    pub fn new(
        host: Arc<RaftHost>,
        machine: Option<Arc<CpMachine>>,
        members: BTreeMap<NodeId, String>,
        now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> Arc<Self> {
        Arc::new(Self {
            host,
            machine: Mutex::new(machine),
            members: Mutex::new(members),
            seeds: Mutex::default(),
            leader: Mutex::new(None),
            now_ms,
            reports: Mutex::default(),
        })
    }

    /// Start the local `_cp` replica (if this node is a member) and
    /// bootstrap it when `bootstrap` names the initial members.
    pub async fn start_local(
        host: &Arc<RaftHost>,
        machine: Arc<CpMachine>,
        bootstrap: Option<BTreeMap<NodeId, String>>,
    ) -> Result<(), CpError> {
        host.start_group(CP_GROUP, 0, machine).await.map_err(|e| CpError::Unavailable(e.to_string()))?;
        if let Some(members) = bootstrap {
            let m = members.into_iter().map(|(id, addr)| (id, BasicNode { addr })).collect();
            host.initialize(CP_GROUP, m).await.map_err(|e| CpError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }

    /// The clock proposals are stamped with.
    pub fn now_ms(&self) -> u64 {
        (self.now_ms)()
    }

    pub fn local_machine(&self) -> Option<Arc<CpMachine>> {
        self.machine.lock().expect("machine lock").clone()
    }

    /// The local `_cp` replica, while this node hosts one.
    pub fn local_group(&self) -> Option<tidal_raft::host::GroupHandle> {
        self.host.group(CP_GROUP)
    }

    /// Start a `_cp` replica here, empty, to catch up as a learner: the
    /// control plane's vote is moving onto this node (see `cp_votes`).
    pub async fn host_replica(&self) -> Result<(), CpError> {
        if self.local_group().is_some() {
            return Ok(());
        }
        let machine = CpMachine::open(self.host.storage()).map_err(CpError::Unavailable)?;
        Self::start_local(&self.host, machine.clone(), None).await?;
        *self.machine.lock().expect("machine lock") = Some(machine);
        Ok(())
    }

    /// Delete this node's `_cp` replica: its vote has moved to another
    /// node. It is not started again at a restart, and the node never
    /// bootstraps a control plane again (see [`RaftHost::leave_group`]).
    pub async fn drop_replica(&self) -> Result<(), CpError> {
        self.machine.lock().expect("machine lock").take();
        self.host.leave_group(CP_GROUP).await.map_err(|e| CpError::Unavailable(e.to_string()))
    }

    pub fn is_local_leader(&self) -> bool {
        self.host
            .group(CP_GROUP)
            .map(|g| g.raft.metrics().borrow_watched().current_leader == Some(self.host.node_id()))
            .unwrap_or(false)
    }

    /// On the control-plane leader: wait until the local state holds every
    /// entry committed before this call, so that what the executor reads
    /// next is current and not what a newly elected leader had yet to apply.
    pub async fn local_barrier(&self) -> Result<(), CpError> {
        let g = self.host.group(CP_GROUP).ok_or_else(|| CpError::Unavailable("no local control plane".into()))?;
        match g.raft.ensure_linearizable(openraft::ReadPolicy::ReadIndex).await {
            Ok(_) => Ok(()),
            Err(e) => Err(CpError::Unavailable(e.to_string())),
        }
    }

    /// Take the `_cp` voters' addresses from a cluster state. Once it
    /// knows every voter's, they replace the ones this node knew (a vote
    /// may have moved off a node); until then they add to them.
    pub fn learn(&self, state: &ClusterState) {
        let known: BTreeMap<NodeId, String> =
            state.cp_members.iter().filter_map(|id| Some((*id, state.nodes.get(id)?.peer_addr.clone()))).collect();
        let mut members = self.members.lock().expect("members lock");
        if !known.is_empty() && known.len() == state.cp_members.len() {
            *members = known;
        } else {
            members.extend(known);
        }
    }

    /// Ask `addr` too when no member answers (see `seeds`).
    pub fn add_seed(&self, addr: &str) {
        let mut seeds = self.seeds.lock().expect("seeds lock");
        if !seeds.iter().any(|a| a == addr) {
            seeds.push(addr.to_string());
        }
    }

    pub fn member_addrs(&self) -> BTreeMap<NodeId, String> {
        self.members.lock().expect("members lock").clone()
    }

    /// Serve a request arriving on the peer transport from `from`. A
    /// request that speaks for a node (a registration, a watch with its
    /// report) is refused unless it comes from that node itself.
    pub async fn handle(&self, from: PeerId, req: CpRequest) -> CpResponse {
        if let Some(claimed) = claimed_node(&req).filter(|n| !from.may_speak_for(*n)) {
            let why = format!("a control-plane request for node {claimed} from a peer whose certificate says {from:?}");
            tracing::warn!("refused {why}");
            return CpResponse::Reply(CpReply::Refused(format!("refused {why}")));
        }
        match req {
            CpRequest::Read => self.local_read().await,
            CpRequest::Watch { after, wait_ms, node, report } => self.local_watch(after, wait_ms, node, report).await,
            CpRequest::Propose(cmd) => self.local_propose(cmd).await,
            // Registered by the leader itself, never relayed: a relay would
            // reach the leader from another node than the one joining.
            CpRequest::Join(r) => match self.local_propose(CpCommand::Register(r)).await {
                CpResponse::Reply(CpReply::Refused(r)) => CpResponse::Reply(CpReply::Refused(r)),
                CpResponse::Reply(_) => match self.read().await {
                    Ok(s) => CpResponse::State(s),
                    Err(e) => CpResponse::Unavailable(e.to_string()),
                },
                CpResponse::NotLeader { addr: None, .. } => self.redirect().await,
                other => other,
            },
        }
    }

    /// Where the leader is, as far as this node can find out: the answer a
    /// node that does not host `_cp` gives a joining node.
    async fn redirect(&self) -> CpResponse {
        if self.leader.lock().expect("leader lock").is_none() {
            let _ = self.call(CpRequest::Read, Duration::from_secs(2)).await;
        }
        CpResponse::NotLeader { leader: None, addr: self.leader.lock().expect("leader lock").clone() }
    }

    fn not_leader(&self, leader: Option<NodeId>) -> CpResponse {
        let addr = leader.and_then(|l| {
            let g = self.host.group(CP_GROUP)?;
            let m = g.raft.metrics().borrow_watched().membership_config.clone();
            m.membership().get_node(&l).map(|n| n.addr.clone())
        });
        CpResponse::NotLeader { leader, addr }
    }

    async fn local_read(&self) -> CpResponse {
        let (Some(g), Some(machine)) = (self.host.group(CP_GROUP), self.local_machine()) else {
            return CpResponse::NotLeader { leader: None, addr: None };
        };
        match g.raft.ensure_linearizable(openraft::ReadPolicy::ReadIndex).await {
            Ok(_) => CpResponse::State((*machine.state()).clone()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => self.not_leader(f.leader_id),
            Err(e) => CpResponse::Unavailable(e.to_string()),
        }
    }

    /// Serve a watch on this node, if it leads: answer as soon as the state
    /// passes `after`, or after `wait_ms` (confirming leadership again)
    /// that it did not.
    async fn local_watch(&self, after: u64, wait_ms: u64, node: NodeId, report: NodeReport) -> CpResponse {
        let (Some(g), Some(machine)) = (self.host.group(CP_GROUP), self.local_machine()) else {
            return CpResponse::NotLeader { leader: None, addr: None };
        };
        let linearize = || async {
            match g.raft.ensure_linearizable(openraft::ReadPolicy::ReadIndex).await {
                Ok(_) => None,
                Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                    Some(self.not_leader(f.leader_id))
                }
                Err(e) => Some(CpResponse::Unavailable(e.to_string())),
            }
        };
        let mut changes = machine.subscribe();
        if let Some(r) = linearize().await {
            return r;
        }
        let report = NodeReport { received_ms: (self.now_ms)(), ..report };
        self.reports.lock().expect("reports lock").insert(node, (report, tokio::time::Instant::now()));
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms).min(MAX_WATCH);
        let answer = |s: &ClusterState| CpResponse::Watched {
            state: (s.version > after).then(|| s.clone()),
            version: s.version,
            reports: self.node_reports(),
        };
        loop {
            let s = changes.borrow_and_update().clone();
            if s.version > after {
                // Applied here, so committed: as current as a read now.
                return answer(&s);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return CpResponse::Unavailable("the control plane stopped".into()),
                Err(_) => break,
            }
        }
        if let Some(r) = linearize().await {
            return r;
        }
        answer(&machine.state())
    }

    /// Wait (up to `wait`) for the state to pass version `after`, reporting
    /// this node's `report`.
    pub async fn watch(
        &self,
        after: u64,
        wait: Duration,
        node: NodeId,
        report: NodeReport,
    ) -> Result<Watched, CpError> {
        let req = CpRequest::Watch { after, wait_ms: wait.as_millis() as u64, node, report };
        match self.call_within(req, wait + Duration::from_secs(5), wait + CALL_TIMEOUT).await? {
            CpResponse::Watched { state, version, reports } => {
                if let Some(s) = &state {
                    self.learn(s);
                }
                Ok(Watched { state, version, reports })
            }
            other => Err(CpError::Unavailable(format!("unexpected answer {other:?}"))),
        }
    }

    /// On the leader: what each node last reported of itself (the routing
    /// epoch it has applied, the bytes it stores).
    pub fn node_reports(&self) -> BTreeMap<NodeId, NodeReport> {
        self.reports.lock().expect("reports lock").iter().map(|(n, (r, _))| (*n, r.clone())).collect()
    }

    /// On the leader: what each node last reported, with the report's age
    /// on this process's monotonic clock (ms).
    pub fn aged_reports(&self) -> BTreeMap<NodeId, (NodeReport, u64)> {
        let now = tokio::time::Instant::now();
        let reports = self.reports.lock().expect("reports lock");
        reports
            .iter()
            .map(|(n, (r, at))| (*n, (r.clone(), now.saturating_duration_since(*at).as_millis() as u64)))
            .collect()
    }

    /// On the leader: each node's health as of now, aged on this process's
    /// monotonic clock, so that a jump of the wall clock neither makes a
    /// silent node look fresh nor every node look silent.
    pub fn node_health(&self) -> BTreeMap<NodeId, tidal_core::health::NodeHealth> {
        self.aged_reports()
            .into_iter()
            .map(|(n, (r, age_ms))| (n, tidal_core::health::NodeHealth { ready: r.ready, reasons: r.reasons, age_ms }))
            .collect()
    }

    async fn local_propose(&self, cmd: CpCommand) -> CpResponse {
        let Some(g) = self.host.group(CP_GROUP) else {
            return CpResponse::NotLeader { leader: None, addr: None };
        };
        let p = Proposal { now_ms: (self.now_ms)(), body: crate::state_format::encode_command(&cmd) };
        match g.raft.client_write(p).await {
            Ok(r) => match postcard::from_bytes::<CpReply>(&r.data) {
                Ok(reply) => CpResponse::Reply(reply),
                Err(e) => CpResponse::Unavailable(format!("undecodable reply: {e}")),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => self.not_leader(f.leader_id),
            Err(e) => CpResponse::Unavailable(e.to_string()),
        }
    }

    /// Send `req` to the control-plane leader, following redirects, within
    /// a budget of `budget`.
    pub async fn call(&self, req: CpRequest, budget: Duration) -> Result<CpResponse, CpError> {
        self.call_within(req, budget, CALL_TIMEOUT).await
    }

    /// [`Self::call`], waiting up to `each` for any one answer.
    async fn call_within(&self, req: CpRequest, budget: Duration, each: Duration) -> Result<CpResponse, CpError> {
        let deadline = Instant::now() + budget;
        let mut last_err = String::from("no control-plane members known");
        let mut attempt = 0u32;
        while Instant::now() < deadline {
            let mut targets: Vec<String> = Vec::new();
            if let Some(l) = self.leader.lock().expect("leader lock").clone() {
                targets.push(l);
            }
            let seeds = self.seeds.lock().expect("seeds lock").clone();
            for a in self.member_addrs().into_values().chain(seeds) {
                if !targets.contains(&a) {
                    targets.push(a);
                }
            }
            for addr in targets {
                let resp = self.host.peers().call(&addr, CP_GROUP, 0, Request::App(enc(&req)), each.min(budget)).await;
                match resp {
                    Ok(Response::App(bytes)) => match postcard::from_bytes::<CpResponse>(&bytes) {
                        Ok(CpResponse::NotLeader { addr: Some(hint), .. }) => {
                            *self.leader.lock().expect("leader lock") = Some(hint);
                            last_err = format!("{addr} is not the control-plane leader");
                        }
                        Ok(CpResponse::NotLeader { .. }) => last_err = format!("{addr}: no control-plane leader yet"),
                        Ok(CpResponse::Unavailable(e)) => last_err = format!("{addr}: {e}"),
                        Ok(other) => {
                            *self.leader.lock().expect("leader lock") = Some(addr);
                            return Ok(other);
                        }
                        Err(e) => last_err = format!("{addr}: undecodable response: {e}"),
                    },
                    Ok(other) => last_err = format!("{addr}: unexpected response {other:?}"),
                    Err(e) => last_err = e.to_string(),
                }
                if Instant::now() >= deadline {
                    break;
                }
            }
            attempt += 1;
            let pause = Duration::from_millis((25 * u64::from(attempt)).min(250));
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
        Err(CpError::Unavailable(last_err))
    }

    /// A linearizable read of the cluster state from the leader.
    pub async fn read(&self) -> Result<ClusterState, CpError> {
        match self.call(CpRequest::Read, Duration::from_secs(5)).await? {
            CpResponse::State(s) => {
                self.learn(&s);
                Ok(s)
            }
            other => Err(CpError::Unavailable(format!("unexpected answer {other:?}"))),
        }
    }

    pub async fn propose(&self, cmd: CpCommand) -> Result<CpReply, CpError> {
        reply(self.call(CpRequest::Propose(cmd), PROPOSE_BUDGET).await?)
    }

    /// Propose `cmd` on this node's own `_cp` replica, as its leader, and
    /// never relay it. The control plane's own drivers (moves, operations,
    /// votes, healing, the autoscaler) decide what to propose from the
    /// state their node applied while it led; a node that lost the lead
    /// (cut off, say, while it asked the nodes about their health) must
    /// not have such a decision carried out by the new leader. Appended
    /// here, the entry commits only if this node still leads in the term
    /// that appended it; otherwise it is dropped with the old term and the
    /// call answers [`CpError::NotLeader`].
    pub async fn propose_as_leader(&self, cmd: CpCommand) -> Result<CpReply, CpError> {
        match tokio::time::timeout(PROPOSE_BUDGET, self.local_propose(cmd)).await {
            Err(_) => Err(CpError::Unavailable(format!("not committed within {PROPOSE_BUDGET:?}"))),
            Ok(answer) => reply(answer),
        }
    }

    /// Join through any node at `addr` (used by `tidal node --join`).
    pub async fn join(&self, addr: &str, info: Registration, budget: Duration) -> Result<ClusterState, CpError> {
        let deadline = Instant::now() + budget;
        let mut last = String::new();
        // The node at `addr` points at the leader, which registers the
        // joining node itself; a leader that no longer answers sends the
        // join back to `addr`.
        let mut target = addr.to_string();
        while Instant::now() < deadline {
            let req = enc(&CpRequest::Join(info.clone()));
            match self.host.peers().call(&target, CP_GROUP, 0, Request::App(req), CALL_TIMEOUT).await {
                Ok(Response::App(bytes)) => match postcard::from_bytes::<CpResponse>(&bytes) {
                    Ok(CpResponse::State(s)) => {
                        self.learn(&s);
                        return Ok(s);
                    }
                    Ok(CpResponse::Reply(CpReply::Refused(r))) => return Err(CpError::Refused(r)),
                    Ok(CpResponse::NotLeader { addr: Some(leader), .. }) if leader != target => {
                        target = leader;
                        continue;
                    }
                    Ok(other) => last = format!("{other:?}"),
                    Err(e) => last = e.to_string(),
                },
                Ok(other) => last = format!("unexpected response {other:?}"),
                Err(e) => last = e.to_string(),
            }
            target = addr.to_string();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(CpError::Unavailable(format!("could not join through {addr}: {last}")))
    }
}

/// What a proposal's answer says: its reply, or why it has none. A relayed
/// call (`ControlPlane::call`) follows NotLeader and Unavailable answers
/// itself, so only a local proposal ends with them.
fn reply(answer: CpResponse) -> Result<CpReply, CpError> {
    match answer {
        CpResponse::Reply(CpReply::Refused(r)) => Err(CpError::Refused(r)),
        CpResponse::Reply(r) => Ok(r),
        CpResponse::NotLeader { .. } => Err(CpError::NotLeader),
        CpResponse::Unavailable(e) => Err(CpError::Unavailable(e)),
        other => Err(CpError::Unavailable(format!("unexpected answer {other:?}"))),
    }
}

/// The node a request speaks for: the one registering, or the one whose
/// report a watch carries.
fn claimed_node(req: &CpRequest) -> Option<NodeId> {
    match req {
        CpRequest::Join(r) | CpRequest::Propose(CpCommand::Register(r)) => Some(r.info.id),
        CpRequest::Propose(CpCommand::RegisterNode(info)) => Some(info.id),
        CpRequest::Watch { node, .. } => Some(*node),
        CpRequest::Read | CpRequest::Propose(_) => None,
    }
}

/// Decode an app frame for `_cp` from `from` and answer it.
pub async fn serve_frame(cp: &ControlPlane, from: PeerId, body: &[u8]) -> Vec<u8> {
    let resp = match decode_request(body) {
        Ok(req) => cp.handle(from, req).await,
        Err(e) => CpResponse::Unavailable(format!("malformed control-plane request: {e}")),
    };
    enc(&resp)
}

/// The request an app frame for `_cp` carries, as a peer sent it.
pub fn decode_request(body: &[u8]) -> Result<CpRequest, postcard::Error> {
    tidal_raft::types::decode(body)
}
