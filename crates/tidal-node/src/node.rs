//! Starting, running and stopping one tidal node.
//!
//! ```text
//!            ┌──────────────────────── node ────────────────────────┐
//!  Redis ───>│ resp server ─┐                                       │
//!  HTTP  ───>│ http server ─┼─> Router ──> RaftHost (PRGs, _cp) ────│──> peers
//!            │              │      ^            ^                   │
//!  peers ───>│ peer server ─┴──────┘ app frames │                   │
//!            │ sync loop: CP read ─> CpCache ─> reconcile (start/bootstrap PRGs)
//!            └──────────────────────────────────────────────────────┘
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::BasicNode;
use tidal_control::{
    ControlPlane, CpCommand, CpError, CpMachine, CpReply, MoveExecutor, NodeReport, OperationExecutor,
};
use tidal_core::ids::CP_GROUP;
use tidal_core::{ClusterState, GroupId, NodeId, NodeInfo, NodeState, Registration};
use tidal_raft::kv_machine::{KvMachine, KvSpec};
use tidal_raft::kv_proposer::KvProposer;
use tidal_raft::read_gate::{GateConfig, ReadGate};
use tidal_raft::transport::{
    Acceptor, BoxFuture, Connector, Handshake, PeerId, Plain, SourceTcpConnector, TcpAcceptor, TcpConnector, WireError,
};
use tidal_raft::{AppHandler, GroupHandle, RaftHost};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::cache::CpCache;
use crate::clock::Clock;
use crate::config::{Bootstrap, NodeConfig};
use crate::disk::Disk;
use crate::forward::{decode_request, KvResponse};
use crate::scan::ScanCursors;

/// How long a stopping node waits for its client connections to finish
/// the requests they have in flight.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How long the first tenant waits for every initial node before it is
/// placed on those that came.
const FIRST_TENANT_GRACE: Duration = Duration::from_secs(15);

/// Everything the node's tasks share.
pub struct Shared {
    pub config: NodeConfig,
    pub host: Arc<RaftHost>,
    pub cp: Arc<ControlPlane>,
    pub cache: CpCache,
    /// The PRGs hosted here, by group name.
    kv: RwLock<BTreeMap<String, KvGroup>>,
    /// Last known leader per PRG, learned from answers.
    pub leaders: Mutex<BTreeMap<String, u64>>,
    pub clock: Arc<dyn Clock>,
    pub started: Instant,
    /// Wakes the sync loop early (a peer reported a newer epoch).
    pub sync_now: Notify,
    pub scans: Mutex<ScanCursors>,
    /// The encoding thresholds CONFIG SET stored on this node.
    pub encodings: Mutex<Vec<i64>>,
    pub next_client_id: AtomicU64,
    pub commands: AtomicU64,
    /// The changes counted when SAVE last ran here, and when (Unix ms; the
    /// node's start before any SAVE): INFO's `rdb_*` figures.
    pub saved: Mutex<(u64, u64)>,
    /// Client requests answered with an error of the cluster's making
    /// (`Reply::is_server_error`).
    pub server_errors: AtomicU64,
    /// What INFO commandstats and errorstats report.
    pub command_stats: crate::command_stats::CommandStats,
    /// Scripts cached and running here.
    pub scripts: crate::script::Scripts,
    /// Client connections refused for `--maxclients`.
    pub refused_clients: AtomicU64,
    /// Open client connections.
    pub connections: AtomicU64,
    /// The client connections waiting in a blocking command (INFO counts
    /// them), by client id, each with how to end its command early
    /// (CLIENT UNBLOCK): send whether to answer with the UNBLOCKED error.
    pub unblockers: Mutex<std::collections::HashMap<u64, tokio::sync::oneshot::Sender<bool>>>,
    /// The pub/sub subscriptions of this node's clients.
    pub pubsub: Arc<crate::pubsub::Hub>,
    /// `notify-keyspace-events`, read by this node's PRG replicas as they
    /// apply writes.
    pub notify_flags: Arc<std::sync::atomic::AtomicU32>,
    /// Where those replicas send the keyspace events they note.
    pub notices: tokio::sync::mpsc::Sender<tidal_raft::notices::Noted>,
    /// Previous (time, applied index) per group, for proposal rates.
    pub rates: Mutex<BTreeMap<String, (Instant, u64)>>,
    /// Advertised addresses (the bound ones when configured with port 0).
    pub info: NodeInfo,
    /// The instance of this node's data directory (see [`Registration`]).
    pub instance: u64,
    /// What each node last reported of itself (applied epoch, bytes), as
    /// the control plane told this node at its last sync.
    pub cp_reports: Mutex<BTreeMap<NodeId, NodeReport>>,
    /// How long requests take on the PRGs this node leads.
    pub latencies: crate::load::Latencies,
    /// How the reads of the PRGs this node leads were confirmed.
    pub read_stats: Arc<tidal_raft::read_gate::ReadStats>,
    /// Reads of READONLY connections served by this node's replicas.
    pub follower_reads: AtomicU64,
    /// Expired keys the reapers of the PRGs this node led deleted.
    pub reaped: AtomicU64,
    /// This process's CPU and memory.
    pub usage: Arc<dyn crate::load::Usage>,
    /// Rates of the load this node reports, between reports.
    pub load: Mutex<crate::load::LoadMeter>,
    /// The cluster's load over the last days, from the shared reports.
    pub history: Mutex<tidal_core::autoscale::history::LoadHistory>,
    /// The load indicators, as last judged from the shared reports.
    pub indicators:
        Mutex<(tidal_core::autoscale::indicators::Tracker, Vec<tidal_core::autoscale::indicators::Indicator>)>,
    /// Why this node must stop (its id is held by another data directory).
    pub(crate) fatal: watch::Sender<Option<String>>,
    pub shutdown: watch::Receiver<bool>,
    /// This node's own handle, for work that outlives a borrowed `&self`.
    pub(crate) weak_self: OnceLock<Weak<Shared>>,
    /// One pull at a time per move on this node: a pull sent again (the
    /// executor gave up waiting) runs after the first, never beside it, so
    /// older rows never land after newer ones.
    pub(crate) pulls: Mutex<BTreeMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// The node's drain: whether this process began one (SIGTERM), which
    /// operator's drain it found already over, and whether it should stop.
    pub(crate) drain: DrainFlags,
}

/// Where this process stands with draining its node (see `drain_api`).
#[derive(Default)]
pub(crate) struct DrainFlags {
    /// SIGTERM began a drain here: not ready from now on.
    pub(crate) begun: AtomicBool,
    /// The operator's drain of this node that had already ended at this
    /// process's first sync (`Some(None)`: none; `None`: no sync yet). It
    /// is not this process's to end; any other operator's drain is, and
    /// the process stops when it is over. (A node that restarts Draining,
    /// or that self-healing moved away from while it was cut off, stays
    /// up, serving as a router, until an operator undrains or removes it.)
    pub(crate) ended_before: Mutex<Option<Option<tidal_core::operation::OpId>>>,
    /// The node should stop: its drain is over, or it was removed.
    pub(crate) done: watch::Sender<bool>,
}

/// How often this node adds the cluster's load to its history.
const HISTORY_EVERY: Duration = Duration::from_secs(15);

/// How often the autoscaler decides, while this node leads the control plane.
const AUTOSCALE_EVERY: Duration = Duration::from_millis(500);

/// What the data path needs of one hosted PRG.
#[derive(Clone)]
pub struct KvGroup {
    pub group: GroupHandle,
    pub machine: Arc<KvMachine>,
    /// Batches writes into log entries.
    pub proposer: KvProposer,
    /// Batches read-index confirmations.
    pub reads: ReadGate,
    /// Batches this replica's follower reads (READONLY connections).
    pub follower_reads: crate::follower_reads::FollowerReads,
    /// Requests this replica has executed as the leader.
    pub ops: Arc<AtomicU64>,
    /// The scripts running at this leader: one at a time in each slot.
    pub scripts: Arc<crate::script::SlotLocks>,
}

/// How a node meets the network: what it accepts its peer, Redis and
/// HTTP connections on, and how it dials peers. The binary binds TCP
/// (tests bind port 0); a simulation passes its own.
pub struct Network {
    pub peer: Arc<dyn Acceptor>,
    pub client: Arc<dyn Acceptor>,
    pub http: Arc<dyn Acceptor>,
    pub connector: Arc<dyn Connector>,
}

impl Network {
    /// Binds the configured TCP addresses; peers are dialed over TCP, from
    /// `--peer-source-ip` when it is set.
    pub async fn bind(config: &NodeConfig) -> std::io::Result<Network> {
        Ok(Network::tcp(
            TcpListener::bind(&config.listen).await?,
            TcpListener::bind(&config.client_addr).await?,
            TcpListener::bind(&config.http_addr).await?,
            config,
        ))
    }

    /// TCP on listeners the caller bound.
    pub fn tcp(peer: TcpListener, client: TcpListener, http: TcpListener, config: &NodeConfig) -> Network {
        let connector: Arc<dyn Connector> = match config.peer_source_ip {
            Some(ip) => Arc::new(SourceTcpConnector(ip)),
            None => Arc::new(TcpConnector),
        };
        Network {
            peer: Arc::new(TcpAcceptor::new(peer)),
            client: Arc::new(TcpAcceptor::new(client)),
            http: Arc::new(TcpAcceptor::new(http)),
            connector,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error(transparent)]
    Store(#[from] tidal_raft::StoreError),
    #[error(transparent)]
    Host(#[from] tidal_raft::HostError),
    #[error("control plane: {0}")]
    Control(String),
    #[error("node identity: {0}")]
    Identity(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// A running node; dropping it does not stop it, call [`Node::stop`].
pub struct Node {
    pub shared: Arc<Shared>,
    stop_tx: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Shared {
    /// This node's claim to its id.
    fn registration(&self) -> Registration {
        Registration { info: self.info.clone(), instance: self.instance, replace: self.config.replace_node }
    }

    pub fn kv_group(&self, group: &str) -> Option<KvGroup> {
        self.kv.read().expect("kv lock").get(group).cloned()
    }

    /// Keys whose deadlines the reaper's notes hold over the PRG replicas
    /// hosted here, and how many of those notes went over their cap.
    pub fn noted_deadlines(&self) -> (usize, usize) {
        // The machines are collected first: each is locked in turn
        // without holding the node's map of them.
        let machines: Vec<_> = self.kv.read().expect("kv lock").values().map(|kv| kv.machine.clone()).collect();
        machines
            .iter()
            .map(|m| m.noted_deadlines())
            .fold((0, 0), |(keys, over), (n, o)| (keys + n, over + usize::from(o)))
    }

    /// Start a PRG replica here; `true` if it was not running before.
    /// `spec` is the PRG's shape, needed the first time a replica starts
    /// here (later starts read it back from the state file).
    async fn start_prg(&self, group: &str, epoch: u64, spec: Option<KvSpec>) -> Result<bool, NodeError> {
        if self.host.group(group).is_some() {
            return Ok(false);
        }
        // Its old replica's rows are still being deleted: not before that
        // ends (the next round starts it).
        if self.host.dropping(group) {
            return Err(tidal_raft::HostError::Dropping(group.to_string()).into());
        }
        let m = Arc::new(KvMachine::open(group, spec, self.host.storage()).await?);
        m.notices().connect(self.notify_flags.clone(), self.notices.clone());
        let g = self.host.start_group(group, epoch, m.clone()).await?;
        let clock = self.clock.clone();
        let proposer = KvProposer::spawn(g.raft.clone(), move || clock.now_ms(), self.config.max_batch_bytes());
        let wall = self.clock.clone();
        let reads = ReadGate::spawn(
            g.raft.clone(),
            GateConfig {
                policy: self.config.raft.read_policy,
                lease: self.config.raft.read_lease(),
                wall: Arc::new(move || wall.now_ms()),
                stats: self.read_stats.clone(),
            },
        );
        let prg: tidal_core::PrgId = group.parse().map_err(|e| NodeError::Control(format!("group {group}: {e}")))?;
        let follower_reads = crate::follower_reads::FollowerReads::spawn(
            self.weak_self.get().cloned().unwrap_or_default(),
            prg,
            g.raft.clone(),
        );
        crate::reaper::spawn(self.weak_self.get().cloned().unwrap_or_default(), group.to_string(), m.clone());
        self.kv.write().expect("kv lock").insert(
            group.to_string(),
            KvGroup {
                group: g,
                machine: m,
                proposer,
                reads,
                follower_reads,
                ops: Arc::default(),
                scripts: Arc::default(),
            },
        );
        Ok(true)
    }

    /// Start and bootstrap the PRGs the cluster state places here.
    ///
    /// With `confirmed` (the state was just read from the control plane),
    /// replicas this node hosts but the state no longer places here are
    /// stopped and purged: a replica move took them elsewhere.
    async fn reconcile(&self, state: &ClusterState, confirmed: bool) {
        let me = self.config.node_id;
        if confirmed {
            self.retire_unplaced(state).await;
        }
        for p in state.placements_hosted_on(me) {
            let group = p.prg.to_string();
            let Some(spec) = spec_of(state, &p.prg) else { continue };
            let just_started = match self.start_prg(&group, p.epoch, Some(spec)).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(group, error = %e, "cannot start PRG");
                    continue;
                }
            };
            // The bootstrapping member waits one sync round after starting
            // its replica, so the other members have started theirs and the
            // first election finds them. Only a group that never had a
            // leader is bootstrapped: a replica that joins later (or lost
            // its data) catches up from the others instead.
            if p.members.first() == Some(&me) && !just_started && !p.bootstrapped {
                let members: BTreeMap<u64, BasicNode> = p
                    .members
                    .iter()
                    .filter_map(|m| state.nodes.get(m).map(|n| (*m, BasicNode { addr: n.peer_addr.clone() })))
                    .collect();
                if members.len() == p.members.len() {
                    if let Err(e) = self.host.initialize(&group, members).await {
                        tracing::warn!(group, error = %e, "cannot bootstrap PRG");
                    }
                }
            }
        }
    }

    /// Stop and purge the PRG replicas hosted here that `state` places
    /// elsewhere.
    async fn retire_unplaced(&self, state: &ClusterState) {
        let me = self.config.node_id;
        for g in self.host.groups() {
            let Ok(prg) = g.name.parse::<tidal_core::PrgId>() else { continue };
            // A PRG the state does not know yet (a newer placement) stays;
            // one it retired (a rolled-back operation's) goes.
            match state.placements.get(&prg) {
                Some(p) if p.hosted_on(me) => continue,
                None if !state.retired_prgs.contains(&prg) => continue,
                _ => {}
            }
            let group = g.name.to_string();
            self.kv.write().expect("kv lock").remove(&group);
            match self.host.remove_group(&group).await {
                Ok(()) => tracing::info!(group, "replica moved away; stopped, its data being deleted"),
                Err(e) => tracing::warn!(group, error = %e, "cannot purge a replica that moved away"),
            }
        }
    }

    /// One round of the sync loop: confirm the cache, register this node,
    /// and (on the control-plane leader) create the default tenant.
    /// The control plane answers as soon as its state changes, or after
    /// `--cache-sync-ms` that it did not; `false` if it could not be reached.
    async fn sync_once(&self) -> bool {
        let me = self.config.node_id;
        let known = self.cache.get();
        let wait = Duration::from_millis(self.config.cache_sync_ms);
        let r = crate::admin::readiness(self);
        let (prg_bytes, data_bytes) = self.data_bytes();
        let report = NodeReport {
            applied_epoch: known.routing_epoch,
            stored_bytes: self.stored_bytes(),
            data_bytes,
            ready: r.ready,
            reasons: r.reasons,
            received_ms: 0,
            prg_bytes,
            load: self.measure_load(),
        };
        let watched = tokio::select! {
            biased;
            w = self.cp.watch(known.version, wait, me, report.clone()) => w,
            // A router found this copy behind: ask for the state now.
            _ = self.sync_now.notified() => self.cp.watch(known.version, Duration::ZERO, me, report).await,
        };
        let watched = match watched {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!(error = %e, "control-plane sync failed");
                return false;
            }
        };
        let now = Instant::now();
        match watched.state {
            Some(s) => self.cache.confirm(s, now),
            None => self.cache.touch(now),
        }
        *self.cp_reports.lock().expect("reports lock") = watched.reports;
        let state = self.cache.get();
        if state.removed_nodes.contains(&me) {
            self.removed();
            return true;
        }
        // Draining is the control plane's to set: a node registers again
        // only when what it serves changed.
        let known = state.nodes.get(&me).map(|n| NodeInfo { state: self.info.state, ..n.clone() });
        if known.as_ref() != Some(&self.info) || state.instances.get(&me) != Some(&self.instance) {
            match self.cp.propose(CpCommand::Register(self.registration())).await {
                Ok(_) => {}
                Err(CpError::Refused(_)) if self.cp.read().await.is_ok_and(|s| s.removed_nodes.contains(&me)) => {
                    self.removed();
                    return true;
                }
                Err(CpError::Refused(why)) => {
                    // Another node holds this id: host nothing, and stop.
                    tracing::error!(error = %why, "the control plane refused this node's registration");
                    self.fatal.send_replace(Some(why));
                    return false;
                }
                Err(e) => tracing::warn!(error = %e, "cannot register with the control plane"),
            }
        }
        if self.cp.is_local_leader() {
            self.lead_duties(&state).await;
        }
        self.host_cp_replica(&state).await;
        self.reconcile(&self.cache.get(), true).await;
        self.report_leadership(&state).await;
        self.drain_duties(&self.cache.get()).await;
        true
    }

    /// Start a `_cp` replica when the control plane names this node a
    /// learner, and delete it once the node is neither learner nor voter:
    /// the control plane's vote moved onto, or off, this node (see
    /// `tidal_control::cp_votes`). The state names the voters only after
    /// the membership change that made them, so a replica deleted here no
    /// longer votes.
    async fn host_cp_replica(&self, state: &ClusterState) {
        if state.cp_members.is_empty() {
            return;
        }
        let me = self.config.node_id;
        let wanted = tidal_control::command::drain_ops::in_cp(state, me);
        let hosted = self.cp.local_group().is_some();
        let result = match (wanted, hosted) {
            (true, false) => self.cp.host_replica().await.map(|()| "started"),
            (false, true) => self.cp.drop_replica().await.map(|()| "deleted: its vote moved to another node"),
            _ => return,
        };
        match result {
            Ok(what) => tracing::info!(node = me, "control-plane replica {what}"),
            Err(e) => tracing::warn!(node = me, error = %e, "control-plane replica not changed"),
        }
    }

    /// Removed from the cluster (after its replicas were moved off):
    /// nothing is left to serve, so stop.
    fn removed(&self) {
        tracing::warn!(node = self.config.node_id, "this node was removed from the cluster; stopping");
        self.drain.done.send_replace(true);
    }

    /// While the control plane has this node Draining: hand off every
    /// leadership it holds (again each round, should an election give one
    /// back), and once its replicas are gone end the drain this process
    /// saw begin.
    async fn drain_duties(&self, state: &ClusterState) {
        let me = self.config.node_id;
        use tidal_control::command::drain_ops::{drained, draining_now, DRAIN};
        let asked = state.drains.get(&me).filter(|d| d.kind == DRAIN).map(|d| d.operation);
        let ended_before = *self
            .drain
            .ended_before
            .lock()
            .expect("drain lock")
            .get_or_insert_with(|| asked.filter(|_| draining_now(state, me).is_none()));
        if state.nodes.get(&me).is_none_or(|n| n.state != NodeState::Draining) {
            return;
        }
        self.hand_off_leaderships(None).await;
        let ours = self.drain.begun.load(Ordering::Relaxed) || (asked.is_some() && asked != ended_before);
        if ours && drained(state, me) {
            self.drain.done.send_replace(true);
        }
    }

    /// Whether this node is draining: SIGTERM began it, or the control
    /// plane has it Draining.
    pub fn draining(&self) -> bool {
        self.drain.begun.load(Ordering::Relaxed)
            || self.cache.get().nodes.get(&self.config.node_id).is_some_and(|n| n.state == NodeState::Draining)
    }

    /// Ask another voter, an Active one, to take over every group this node
    /// leads, so clients wait for a hand-off instead of an election
    /// timeout. With a budget, wait that long for the hand-offs; without,
    /// only ask.
    pub(crate) async fn hand_off_leaderships(&self, budget: Option<Duration>) {
        let me = self.config.node_id;
        let state = self.cache.get();
        let mut waiting = Vec::new();
        for g in self.host.groups() {
            let m = g.raft.metrics().borrow_watched().clone();
            if m.current_leader != Some(me) {
                continue;
            }
            let voters = m.membership_config.membership().voter_ids();
            let Some(to) = tidal_control::command::drain_ops::hand_off_to(&state, me, voters) else { continue };
            if g.raft.trigger().transfer_leader(to).await.is_ok() {
                waiting.push(g);
            }
        }
        let Some(budget) = budget else { return };
        let deadline = Instant::now() + budget;
        for g in waiting {
            let mut metrics = g.raft.metrics();
            let moved = async {
                while metrics.borrow_watched().current_leader == Some(me) {
                    if metrics.changed().await.is_err() {
                        return;
                    }
                }
            };
            if tokio::time::timeout_at(deadline, moved).await.is_err() {
                tracing::warn!(group = %g.name, "leadership not handed off before stopping");
            }
        }
    }

    /// What the health check holds the cluster to: a report counts for
    /// three sync rounds (at least 5 s), and a fence for its budget.
    pub(crate) fn health_limits(&self) -> tidal_core::health::HealthLimits {
        tidal_core::health::HealthLimits {
            report_ms: (3 * self.config.cache_sync_ms).max(5000),
            fence_budget_ms: self.config.moves.limits.fence_budget_ms,
            min_available: self.config.min_available_replicas,
        }
    }

    /// Every node's last report as the control plane shared it, read as
    /// the autoscaler reads it (fresh when it arrived within the health
    /// check's limit, at `now_ms`).
    pub(crate) fn reported(&self, now_ms: u64) -> BTreeMap<NodeId, tidal_core::autoscale::signals::Reported> {
        let limit = self.health_limits().report_ms;
        let reports = self.cp_reports.lock().expect("reports lock");
        reports.iter().map(|(n, r)| (*n, r.reported(now_ms.saturating_sub(r.received_ms) <= limit))).collect()
    }

    /// Add the cluster's load, as the latest fresh reports give it, to the
    /// history, and judge the load indicators by it.
    fn record_history(&self) {
        let now = self.clock.now_ms();
        let reports = self.reported(now);
        let fresh: Vec<(&NodeId, &tidal_core::autoscale::signals::Reported)> =
            reports.iter().filter(|(_, r)| r.fresh).collect();
        let loads: Vec<&tidal_core::autoscale::signals::NodeLoad> = fresh.iter().map(|(_, r)| &r.load).collect();
        let figures = tidal_core::autoscale::indicators::figures(&loads);
        let overrides = self.cache.get().autoscale.policy().map(|p| p.indicators).unwrap_or_default();
        let levels = tidal_core::autoscale::indicators::levels(&overrides);
        {
            let mut indicators = self.indicators.lock().expect("indicators lock");
            let judged = indicators.0.update(now, &figures, &levels);
            indicators.1 = judged;
        }
        if fresh.is_empty() {
            return;
        }
        let sample = tidal_core::autoscale::history::Sample {
            ops: fresh.iter().map(|(_, r)| r.load.ops_milli as f64 / 1000.0).sum(),
            nodes: fresh.iter().map(|(n, r)| (**n, (r.load.cpu_millicores, r.load.rss_bytes))).collect(),
        };
        self.history.lock().expect("history lock").record(now, &sample);
    }

    /// This node's load now, for its report (see `load`).
    fn measure_load(&self) -> tidal_core::autoscale::signals::NodeLoad {
        let me = self.config.node_id;
        let groups: Vec<KvGroup> = self.kv.read().expect("kv lock").values().cloned().collect();
        let prg_ops = groups
            .iter()
            .filter(|g| g.group.raft.metrics().borrow_watched().current_leader == Some(me))
            .filter_map(|g| Some((g.group.name.parse().ok()?, g.ops.load(Ordering::Relaxed))))
            .collect();
        // The farthest voting follower of a PRG this node leads.
        let lag = crate::admin::group_reports(self)
            .iter()
            .filter(|g| g.leader == Some(me) && g.id != CP_GROUP)
            .flat_map(|g| g.replication_lag.values().copied())
            .max()
            .unwrap_or(0);
        let counters = crate::load::Counters {
            commands: self.commands.load(Ordering::Relaxed),
            errors: self.server_errors.load(Ordering::Relaxed),
            prg_ops,
            latencies: self.latencies.snapshot(),
            usage: self.usage.sample(),
        };
        let connections = self.connections.load(Ordering::Relaxed);
        self.load.lock().expect("load lock").measure(Instant::now(), counters, lag, connections)
    }

    /// About how many bytes of rows each PRG this node leads holds, and
    /// all of its replicas together.
    fn data_bytes(&self) -> (BTreeMap<tidal_core::PrgId, u64>, u64) {
        let me = self.config.node_id;
        let groups: Vec<KvGroup> = self.kv.read().expect("kv lock").values().cloned().collect();
        let mut led = BTreeMap::new();
        let mut total = 0;
        for g in groups {
            let Ok(bytes) = g.machine.approx_bytes(self.host.storage()) else { continue };
            total += bytes;
            if g.group.raft.metrics().borrow_watched().current_leader == Some(me) {
                if let Ok(prg) = g.group.name.parse() {
                    led.insert(prg, bytes);
                }
            }
        }
        (led, total)
    }

    /// Bytes of disk this node's data directory takes (its log, state and
    /// snapshots): the blocks allocated, which may be fewer than the files'
    /// lengths (redb sets a file's length ahead of what it writes).
    fn stored_bytes(&self) -> u64 {
        fn size(dir: &std::path::Path, depth: u32) -> u64 {
            use std::os::unix::fs::MetadataExt;
            let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
            entries
                .flatten()
                .filter_map(|e| Some((e.path(), e.metadata().ok()?)))
                .map(|(p, m)| if m.is_dir() && depth > 0 { size(&p, depth - 1) } else { m.blocks() * 512 })
                .sum()
        }
        size(&self.config.data_dir, 2)
    }

    /// Work only the control-plane leader does.
    async fn lead_duties(&self, state: &ClusterState) {
        // The first voters, as `--peers` named them; from then on the
        // control plane moves its votes itself (`cp_votes`).
        if let Some(members) = self.config.cp_members().filter(|_| state.cp_members.is_empty()) {
            let ids: Vec<u64> = members.keys().copied().collect();
            let _ = self.cp.propose_as_leader(CpCommand::SetCpMembers(ids)).await;
        }
        if !state.tenants.contains_key(tidal_core::ids::DEFAULT_TENANT) && self.first_tenant_due(state) {
            let cmd = CpCommand::CreateTenant {
                name: tidal_core::ids::DEFAULT_TENANT.to_string(),
                slots: self.config.slots,
                prgs: self.config.prgs,
            };
            match self.cp.propose_as_leader(cmd).await {
                Ok(CpReply::Ok { routing_epoch, .. }) => {
                    tracing::info!(routing_epoch, "created tenant default");
                    self.sync_now.notify_one();
                }
                Ok(other) => tracing::warn!(?other, "cannot create tenant default"),
                Err(e) => tracing::warn!(error = %e, "cannot create tenant default"),
            }
        }
    }

    /// Whether the first tenant may be placed now: once every node named in
    /// `--peers` is active, so that it spreads over the whole initial
    /// cluster, or, should one of them not come, once three are and this
    /// node has been up for [`FIRST_TENANT_GRACE`].
    fn first_tenant_due(&self, state: &ClusterState) -> bool {
        let active: BTreeSet<NodeId> =
            state.nodes.values().filter(|n| n.state == NodeState::Active).map(|n| n.id).collect();
        if active.len() < 3 {
            return false;
        }
        let initial = self.config.initial_nodes();
        initial.iter().all(|n| active.contains(n)) || self.started.elapsed() >= FIRST_TENANT_GRACE
    }

    /// Tell the control plane which PRGs this node leads, when it differs.
    async fn report_leadership(&self, state: &ClusterState) {
        let me = self.config.node_id;
        for p in state.placements_on(me) {
            let Some(g) = self.host.group(&p.prg.to_string()) else { continue };
            let leads = g.raft.metrics().borrow_watched().current_leader == Some(me);
            if leads && p.leader_hint != Some(me) {
                let _ = self.cp.propose(CpCommand::LeaderHint { prg: p.prg.clone(), leader: me }).await;
            }
        }
    }
}

/// How often a node looks whether its certificate files changed.
const CERT_CHECK_EVERY: Duration = Duration::from_secs(10);

struct NodeApp(std::sync::Weak<Shared>);

impl AppHandler for NodeApp {
    fn handle(&self, from: PeerId, group: String, epoch: u64, body: Vec<u8>) -> BoxFuture<Result<Vec<u8>, WireError>> {
        let Some(shared) = self.0.upgrade() else {
            return Box::pin(async { Err(WireError::NoHandler) });
        };
        Box::pin(async move {
            if group == CP_GROUP {
                return Ok(tidal_control::api::serve_frame(&shared.cp, from, &body).await);
            }
            if group == crate::pubsub::PUBSUB_GROUP {
                return crate::pubsub::serve_frame(&shared, &body);
            }
            if group.parse::<GroupId>().is_err() {
                return Err(WireError::Malformed(format!("bad group name '{group}'")));
            }
            let resp = match decode_request(&body) {
                Ok(req) => shared.execute_local(&group, epoch, req, crate::router::FORWARDED_WORK).await,
                Err(e) => KvResponse::Unavailable(format!("malformed request: {e}")),
            };
            Ok(tidal_raft::types::encode(&resp))
        })
    }
}

impl Node {
    /// Open storage, start every group this node hosted before, join the
    /// cluster and serve on `listeners`.
    pub async fn start(
        config: NodeConfig,
        net: Network,
        disk: Arc<dyn Disk>,
        clock: Arc<dyn Clock>,
        usage: Arc<dyn crate::load::Usage>,
    ) -> Result<Node, NodeError> {
        let instance = disk.instance(config.node_id)?;
        let storage = disk.open(config.storage)?;
        match &config.security.tls {
            None => tracing::warn!(
                "running --insecure: peers are not authenticated, traffic is not encrypted, and the admin API is \
                 open{}",
                if config.security.admin_token.is_some() { " to holders of the admin token" } else { " to anyone" }
            ),
            Some(tls) => tracing::info!(dir = %tls.dir().display(), identity = %tls.identity().uri(), "TLS on"),
        }
        // With certificates, every peer connection is TLS both ways.
        let (connector, handshake): (Arc<dyn Connector>, Arc<dyn Handshake>) = match &config.security.tls {
            Some(tls) => (tls.connector(net.connector.clone()), tls.peer_handshake()),
            None => (net.connector.clone(), Arc::new(Plain)),
        };
        let host = RaftHost::new(config.node_id, storage.clone(), connector, &config.raft)?;
        let me = config.node_id;

        let info = NodeInfo {
            id: me,
            peer_addr: advertised(config.advertise.as_ref().unwrap_or(&config.listen), net.peer.as_ref())?,
            client_addr: advertised(&config.client_addr, net.client.as_ref())?,
            http_addr: advertised(&config.http_addr, net.http.as_ref())?,
            zone: config.zone.clone(),
            state: NodeState::Active,
        };

        finish_drops(&host).await;
        let hosted = storage.hosted_groups()?;
        let cp_members = config.cp_members();
        // `--peers` names the first voters; a node whose vote has since
        // moved away neither hosts `_cp` nor bootstraps it again.
        let left_cp = host.left(CP_GROUP)?;
        let is_cp_member = hosted.iter().any(|(g, _)| g == CP_GROUP)
            || (!left_cp && cp_members.as_ref().is_some_and(|m| m.contains_key(&me)));
        let machine = if is_cp_member { Some(CpMachine::open(&storage).map_err(NodeError::Control)?) } else { None };
        let initial = machine.as_ref().map(|m| m.state()).unwrap_or_default();
        let mut known_members = cp_members.clone().unwrap_or_default();
        for id in &initial.cp_members {
            if let Some(n) = initial.nodes.get(id) {
                known_members.entry(*id).or_insert_with(|| n.peer_addr.clone());
            }
        }
        let started_ms = clock.now_ms();
        let now_clock = clock.clone();
        let cp = ControlPlane::new(host.clone(), machine.clone(), known_members, Arc::new(move || now_clock.now_ms()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (notices_tx, notices_rx) = tokio::sync::mpsc::channel(crate::pubsub::NOTICES_QUEUE);
        let shared = Arc::new(Shared {
            cache: CpCache::new(initial.clone(), config.cache),
            config,
            host: host.clone(),
            cp,
            kv: RwLock::default(),
            leaders: Mutex::default(),
            clock,
            started: Instant::now(),
            sync_now: Notify::new(),
            scans: Mutex::new(ScanCursors::default()),
            encodings: Mutex::new(tidal_core::kv::encoding_defaults()),
            next_client_id: AtomicU64::new(1),
            commands: AtomicU64::new(0),
            saved: Mutex::new((0, started_ms)),
            server_errors: AtomicU64::new(0),
            command_stats: crate::command_stats::CommandStats::new(),
            scripts: crate::script::Scripts::default(),
            refused_clients: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            unblockers: Mutex::default(),
            pubsub: Arc::default(),
            notify_flags: Arc::default(),
            notices: notices_tx,
            rates: Mutex::default(),
            info,
            instance,
            cp_reports: Mutex::default(),
            latencies: crate::load::Latencies::default(),
            read_stats: Arc::default(),
            follower_reads: AtomicU64::new(0),
            reaped: AtomicU64::new(0),
            usage,
            load: Mutex::default(),
            history: Mutex::default(),
            indicators: Mutex::default(),
            fatal: watch::channel(None).0,
            shutdown: stop_rx.clone(),
            weak_self: OnceLock::new(),
            pulls: Mutex::default(),
            drain: DrainFlags::default(),
        });
        let _ = shared.weak_self.set(Arc::downgrade(&shared));
        host.set_app_handler(Arc::new(NodeApp(Arc::downgrade(&shared))));

        let mut tasks = Vec::new();
        let dispatch: Arc<dyn tidal_raft::transport::Dispatch> = host.clone();
        let max_frame = shared.config.raft.max_frame_bytes;
        tasks.push(tokio::spawn(tidal_raft::transport::serve_with(
            net.peer,
            handshake,
            dispatch,
            max_frame,
            stop_rx.clone(),
        )));
        if let Some(tls) = shared.config.security.tls.clone() {
            tasks.push(tokio::spawn(tls.watch(CERT_CHECK_EVERY, stop_rx.clone())));
        }

        // Bring back every group hosted before a restart. A PRG whose shape
        // this node never recorded (a data directory from before shapes
        // were recorded) starts once the control plane's state names it.
        for (name, epoch) in &hosted {
            if name == CP_GROUP {
                continue;
            }
            let spec = name.parse().ok().and_then(|prg| spec_of(&initial, &prg));
            if let Err(e) = shared.start_prg(name, *epoch, spec).await {
                tracing::warn!(group = %name, error = %e, "PRG not started yet; waiting for the control plane");
            }
        }
        if let Some(m) = machine {
            let bootstrap = cp_members.filter(|m| !left_cp && m.keys().next() == Some(&me));
            ControlPlane::start_local(&host, m, bootstrap).await.map_err(|e| NodeError::Control(e.to_string()))?;
        }
        if let Bootstrap::Join(addr) = &shared.config.bootstrap {
            shared.cp.add_seed(addr);
            if initial.nodes.is_empty() {
                let s = shared
                    .cp
                    .join(addr, shared.registration(), Duration::from_secs(30))
                    .await
                    .map_err(|e| NodeError::Control(e.to_string()))?;
                shared.cache.confirm(s, Instant::now());
            }
        }
        // Routing starts from what this node knew before the restart.
        shared.reconcile(&initial, false).await;

        let s = shared.clone();
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let every = Duration::from_millis(s.config.cache_sync_ms);
            loop {
                // A sync waits on the control plane itself (a long poll);
                // only a failed one pauses before the next.
                let synced = tokio::select! {
                    biased;
                    ok = s.sync_once() => ok,
                    _ = stop.changed() => return,
                };
                if !synced {
                    tokio::select! {
                        biased;
                        _ = tokio::time::sleep(every) => {}
                        _ = s.sync_now.notified() => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }));
        let ops = Arc::new(crate::move_ops::NodeMoveOps(Arc::downgrade(&shared)));
        let executor = MoveExecutor::new(shared.cp.clone(), ops, shared.config.moves);
        tasks.push(tokio::spawn(executor.run(stop_rx.clone())));
        let ops = Arc::new(crate::move_ops::NodeMoveOps(Arc::downgrade(&shared)));
        let heal = tidal_control::HealConfig {
            delay_ms: shared.config.self_heal_delay_ms,
            budget: shared.config.budget,
            gate_timeout_ms: crate::scale_api::DEFAULT_GATE_TIMEOUT_MS,
        };
        let operations = OperationExecutor::new(shared.cp.clone(), ops, shared.health_limits(), heal);
        tasks.push(tokio::spawn(operations.run(stop_rx.clone())));
        let actions = Arc::new(crate::autoscale_api::NodeScaleActions(Arc::downgrade(&shared)));
        let weak = Arc::downgrade(&shared);
        let forecast: tidal_control::autoscaler::ForecastSource = Arc::new(move |lead_ms| {
            let s = weak.upgrade()?;
            let series = s.history.lock().expect("history lock").ops_series();
            tidal_core::autoscale::forecast::forecast(&series, tidal_core::autoscale::history::STEP_MS, lead_ms)
        });
        let report_ms = shared.health_limits().report_ms;
        let autoscaler =
            tidal_control::Autoscaler::new(shared.cp.clone(), actions, forecast, report_ms, AUTOSCALE_EVERY);
        tasks.push(tokio::spawn(autoscaler.run(stop_rx.clone())));
        let s = shared.clone();
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    _ = tokio::time::sleep(HISTORY_EVERY) => s.record_history(),
                    _ = stop.changed() => return,
                }
            }
        }));
        tasks.push(tokio::spawn(crate::pubsub::publish_events(Arc::downgrade(&shared), notices_rx)));
        tasks.push(tokio::spawn(crate::resp_server::serve(shared.clone(), net.client)));
        tasks.push(tokio::spawn(crate::http::serve(shared.clone(), net.http)));
        tracing::info!(node = me, peer = %shared.info.peer_addr, client = %shared.info.client_addr,
            http = %shared.info.http_addr, "node started");
        Ok(Node { shared, stop_tx, tasks })
    }

    /// Wait until the node finds it must stop (the control plane refused its
    /// registration); the answer says why.
    pub async fn failed(&self) -> String {
        let mut rx = self.shared.fatal.subscribe();
        loop {
            if let Some(why) = rx.borrow_and_update().clone() {
                return why;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Wait until the drain this process saw begin is over: the node's
    /// replicas are elsewhere, and it should stop.
    pub async fn drained(&self) {
        let mut rx = self.shared.drain.done.subscribe();
        if rx.wait_for(|d| *d).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// SIGTERM's drain: not ready from now on, every replica moved to
    /// other nodes through a drain operation (waiting up to
    /// `--drain-timeout-ms`; none with 0, or when the cluster refuses, as a
    /// three-node cluster must), then [`Node::stop`], which hands off the
    /// leaderships left and closes client connections between requests.
    pub async fn drain_and_stop(self) {
        let me = self.shared.config.node_id;
        self.shared.drain.begun.store(true, Ordering::Relaxed);
        let timeout = Duration::from_millis(self.shared.config.drain_timeout_ms);
        if timeout.is_zero() {
            tracing::info!(node = me, "draining: replicas stay (drain-timeout-ms is 0)");
        } else {
            match crate::drain_api::request(&self.shared, me, crate::drain_api::DrainOptions::default()).await {
                Ok(d) => {
                    tracing::info!(node = me, operation = d.operation, "draining: moving every replica away");
                    if tokio::time::timeout(timeout, self.drained()).await.is_err() {
                        tracing::warn!(node = me, "drain not over after {} ms; stopping anyway", timeout.as_millis());
                    }
                }
                Err(e) => tracing::warn!(node = me, error = %e, "draining: replicas stay where they are"),
            }
        }
        self.stop().await;
    }

    /// Stop serving, stop every group, and let the storage writer finish.
    /// Client connections close as soon as their requests in flight are
    /// answered (waiting up to [`CLOSE_GRACE`]); leaderships are handed
    /// off first.
    pub async fn stop(self) {
        let _ = self.stop_tx.send(true);
        for t in &self.tasks {
            t.abort();
        }
        self.shared.drain.begun.store(true, Ordering::Relaxed);
        let handed_off = self.shared.hand_off_leaderships(Some(Duration::from_secs(2)));
        let closed = async {
            let deadline = Instant::now() + CLOSE_GRACE;
            while self.shared.connections.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::join!(handed_off, closed);
        self.shared.host.shutdown().await;
        if let Err(e) = self.shared.host.storage().checkpoint().await {
            tracing::warn!(error = %e, "could not make the applied state durable; a restart re-applies it");
        }
        tracing::info!(node = self.shared.config.node_id, "node stopped");
    }

    pub fn commands_served(&self) -> u64 {
        self.shared.commands.load(Ordering::Relaxed)
    }
}

/// Delete what is left of replicas whose deletion a restart cut short,
/// before anything starts: a group of the name may start here again.
async fn finish_drops(host: &Arc<RaftHost>) {
    let names = match host.unfinished_drops() {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the replicas left half deleted");
            return;
        }
    };
    for name in names {
        let machine: Option<Arc<dyn tidal_raft::Machine>> = if name == CP_GROUP {
            CpMachine::open(host.storage()).ok().map(|m| m as Arc<dyn tidal_raft::Machine>)
        } else {
            KvMachine::open(&name, None, host.storage()).await.ok().map(|m| Arc::new(m) as Arc<dyn tidal_raft::Machine>)
        };
        match host.finish_drop(&name, machine).await {
            Ok(()) => tracing::info!(group = %name, "a removed replica's data, left by a restart, is deleted"),
            Err(e) => tracing::warn!(group = %name, error = %e, "cannot delete a removed replica's data"),
        }
    }
}

/// The shape of PRG `prg` as `state` records it.
fn spec_of(state: &ClusterState, prg: &tidal_core::PrgId) -> Option<KvSpec> {
    let tenant = state.tenants.get(&prg.tenant)?;
    let p = state.placements.get(prg)?;
    Some(KvSpec { slots: tenant.slots, genesis: p.genesis.clone() })
}

/// The address to advertise: the configured one, or the bound one when the
/// configured port is 0.
fn advertised(configured: &str, listener: &dyn Acceptor) -> std::io::Result<String> {
    if configured.ends_with(":0") {
        listener.local_addr()
    } else {
        Ok(configured.to_string())
    }
}
