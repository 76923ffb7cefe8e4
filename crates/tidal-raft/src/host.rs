//! Hosting many Raft groups in one node.
//!
//! ```text
//!                 ┌──────────── RaftHost ─────────────┐
//!  peer frames ──>│ Dispatch: group name ─> Raft       │
//!                 │   _cp        Raft + CP machine     │──> Storage (one redb,
//!                 │   default:0  Raft + KV machine     │     one writer)
//!                 │   default:1  ...                   │──> Peers (one conn
//!                 │ app frames ─> AppHandler (router)  │     per peer)
//!                 └────────────────────────────────────┘
//! ```
//!
//! A group is started once per process with the epoch at which it was
//! placed; the host records it so a restarted node brings back every group
//! it hosted before it has heard from the control plane.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use openraft::{BasicNode, SnapshotPolicy};

use crate::log_store::LogStore;
use crate::machine::Machine;
use crate::state_machine::GroupStateMachine;
use crate::storage::{Storage, StoreError, GROUPS, META};
use crate::transport::{
    BoxFuture, Connector, Dispatch, GroupNetwork, PeerId, Peers, Request, Response, SentBytes, SnapshotPacer, WireError,
};
use crate::types::{Raft, Snapshot, SnapshotData, SnapshotMeta, Vote};

/// The log's per-group metadata, read.
type MetaTable = redb::ReadOnlyTable<(&'static str, &'static str), &'static [u8]>;

/// The metadata key that marks a group whose replica left this node.
const LEFT: &str = "left";
/// In a group's metadata: its replica left this node and its data is
/// being deleted.
const DROPPING: &str = "dropping";

/// Timing and log-retention knobs shared by every group on a node.
#[derive(Clone, Debug)]
pub struct RaftTuning {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Build a snapshot after this many applied entries.
    pub snapshot_every: u64,
    /// Build a snapshot after the log has taken this many bytes, and keep
    /// no more than this many behind it (0: only entry counts apply).
    pub snapshot_bytes: u64,
    /// Entries kept in the log behind the latest snapshot, within
    /// `snapshot_bytes` (more on a leader while a peer catching up needs
    /// them: see [`crate::log_gc`]).
    pub keep_after_snapshot: u64,
    /// How long a peer that makes no progress still holds a leader's log.
    pub log_hold_ms: u64,
    pub snapshot_chunk_bytes: u64,
    /// Bytes a second this node sends snapshots at, to all peers
    /// together (see [`SnapshotPacer`]); 0: no limit. Under a limit the
    /// pieces are smaller, so that they go out evenly.
    pub snapshot_rate_bytes: u64,
    /// Longest peer frame this node sends or takes (every node of a
    /// cluster should have the same).
    pub max_frame_bytes: usize,
    /// How this node's leaders confirm leadership for reads.
    pub read_policy: crate::read_gate::ReadPolicy,
    /// How much shorter than `election_max_ms` a leader's read lease is:
    /// room for the clocks of the leader and its followers to run at
    /// different rates.
    pub lease_margin_ms: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        Self {
            heartbeat_ms: 100,
            election_min_ms: 500,
            election_max_ms: 1000,
            snapshot_every: 20_000,
            snapshot_bytes: 64 << 20,
            keep_after_snapshot: 5_000,
            log_hold_ms: crate::log_gc::HOLD.as_millis() as u64,
            snapshot_chunk_bytes: 4 << 20,
            snapshot_rate_bytes: 0,
            max_frame_bytes: crate::transport::MAX_FRAME,
            read_policy: crate::read_gate::ReadPolicy::Lease,
            lease_margin_ms: 200,
        }
    }
}

impl RaftTuning {
    /// How long after a quorum acknowledged it a leader serves reads
    /// without another round (see [`crate::read_gate`]).
    pub fn read_lease(&self) -> Duration {
        Duration::from_millis(self.election_max_ms.saturating_sub(self.lease_margin_ms))
    }

    /// Why these settings cannot make a read lease, if they cannot: the
    /// lease must outlast at least two heartbeats, or every read would
    /// find it expired.
    pub fn check_lease(&self) -> Result<(), String> {
        if self.read_policy == crate::read_gate::ReadPolicy::Lease
            && self.read_lease() < Duration::from_millis(2 * self.heartbeat_ms)
        {
            return Err(format!(
                "election-max-ms ({}) less lease-margin-ms ({}) must be at least two heartbeats ({} ms)",
                self.election_max_ms,
                self.lease_margin_ms,
                2 * self.heartbeat_ms
            ));
        }
        Ok(())
    }

    pub fn to_config(&self, cluster: &str) -> Result<openraft::Config, String> {
        openraft::Config {
            cluster_name: cluster.to_string(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            // Entries are dropped by the group's own log_gc task, which
            // keeps those a catching-up peer still needs.
            max_in_snapshot_log_to_keep: u64::MAX,
            snapshot_max_chunk_size: crate::transport::paced_piece_bytes(
                self.snapshot_rate_bytes,
                self.snapshot_chunk_bytes,
            ),
            ..Default::default()
        }
        .validate()
        .map_err(|e| e.to_string())
    }
}

/// Requests for the layer above the transport (forwarded client commands,
/// control-plane calls).
pub trait AppHandler: Send + Sync + 'static {
    fn handle(&self, from: PeerId, group: String, epoch: u64, body: Vec<u8>) -> BoxFuture<Result<Vec<u8>, WireError>>;
}

/// A running group.
#[derive(Clone)]
pub struct GroupHandle {
    pub name: Arc<str>,
    pub raft: Raft,
    /// Routing epoch at which this node's replica was placed.
    pub epoch: u64,
    pub(crate) state: GroupStateMachine,
    /// What this node, leading the group, has sent each peer.
    pub sent: Arc<SentBytes>,
    /// The snapshot being received from the leader, piece by piece; the
    /// lock is held while a piece is staged and while the last installs.
    incoming: Arc<tokio::sync::Mutex<Option<Incoming>>>,
}

/// Pieces of a snapshot whose staging may still be running while the
/// next ones arrive: the network and the state writer work side by side,
/// and the sender is held back once this many are queued.
const STAGING_AHEAD: usize = 2;

type Staging = tokio::sync::oneshot::Receiver<Result<(), String>>;

/// A snapshot whose pieces are arriving.
struct Incoming {
    vote: Vote,
    meta: SnapshotMeta,
    /// Bytes taken so far.
    received: u64,
    /// Stagings queued and not yet heard back from, oldest first.
    staging: VecDeque<Staging>,
    started: tokio::time::Instant,
}

impl Incoming {
    /// Why a piece of `len` bytes at `offset` cannot be the next piece of
    /// this transfer, if it cannot: it is of another leader's transfer or
    /// another snapshot, it does not start where the last piece ended, or
    /// it would take the snapshot past `limit` bytes.
    fn refuse(&self, vote: &Vote, meta: &SnapshotMeta, offset: u64, len: usize, limit: Option<u64>) -> Option<String> {
        let why = if *vote != self.vote {
            format!("it is sent under vote {vote}, the transfer under way under {}", self.vote)
        } else if *meta != self.meta {
            format!(
                "it is of the snapshot up to {:?}, the transfer under way of the one up to {:?}",
                meta.last_log_id, self.meta.last_log_id
            )
        } else if offset != self.received {
            format!("{} bytes have been received", self.received)
        } else {
            match limit {
                Some(limit) if self.received.saturating_add(len as u64) > limit => format!(
                    "its {len} bytes would take the snapshot past {limit} bytes, the most this group's snapshots hold"
                ),
                _ => return None,
            }
        };
        Some(format!("snapshot piece at offset {offset} does not continue the transfer: {why}"))
    }

    /// Wait until at most `ahead` stagings are outstanding.
    async fn settle(&mut self, ahead: usize) -> Result<(), String> {
        while self.staging.len() > ahead {
            let rx = self.staging.pop_front().expect("longer than ahead");
            rx.await.map_err(|_| "the storage writer stopped".to_string())??;
        }
        Ok(())
    }
}

impl GroupHandle {
    /// Take one piece of a snapshot and queue its staging in the state
    /// file; the last piece installs what was staged. Pieces come in order
    /// from offset 0: a piece at offset 0 starts over (the leader restarted
    /// the transfer), any other piece must continue the same snapshot
    /// exactly where the last one ended. A piece that cannot be read or
    /// staged, or that takes the snapshot past what the group's machine
    /// accepts ([`Machine::max_snapshot_bytes`](crate::Machine::max_snapshot_bytes)),
    /// ends the transfer; the leader starts it over.
    ///
    /// What a transfer holds in memory is bounded either way: the piece
    /// being taken, within one frame, and at most [`STAGING_AHEAD`] pieces
    /// queued for staging; a machine that gathers its whole snapshot in
    /// memory also bounds the total.
    async fn receive_snapshot(
        &self,
        vote: Vote,
        meta: SnapshotMeta,
        offset: u64,
        data: Vec<u8>,
        done: bool,
    ) -> Result<Option<openraft::raft::SnapshotResponse<crate::types::TypeConfig>>, WireError> {
        let mut incoming = self.incoming.lock().await;
        if offset == 0 {
            let started = tokio::time::Instant::now();
            *incoming = Some(Incoming { vote, meta: meta.clone(), received: 0, staging: VecDeque::new(), started });
        }
        let Some(cur) = incoming.as_mut() else {
            return Err(WireError::Raft(format!("snapshot piece at offset {offset} with no transfer under way")));
        };
        if let Some(why) = cur.refuse(&vote, &meta, offset, data.len(), self.state.max_snapshot_bytes()) {
            *incoming = None;
            return Err(self.abandon(why));
        }
        let staged = if offset == 0 || !data.is_empty() {
            match self.state.stage_piece(offset == 0, &data) {
                Ok(rx) => {
                    cur.staging.push_back(rx);
                    cur.received += data.len() as u64;
                    cur.settle(if done { 0 } else { STAGING_AHEAD }).await
                }
                Err(e) => Err(e.to_string()),
            }
        } else {
            cur.settle(0).await
        };
        if let Err(e) = staged {
            *incoming = None;
            return Err(self.abandon(format!("snapshot piece at offset {offset} not staged: {e}")));
        }
        if !done {
            return Ok(None);
        }
        let whole = incoming.take().expect("checked above");
        if let Err(e) = self.state.check_staged() {
            return Err(self.abandon(format!("snapshot refused: {e}")));
        }
        let staged = whole.started.elapsed();
        let index = whole.meta.last_log_id.map(|l| l.index);
        let snapshot = Snapshot { meta: whole.meta, snapshot: SnapshotData::staged() };
        let r = self.raft.install_full_snapshot(whole.vote, snapshot).await;
        // An install took what was staged; a snapshot no newer than what the
        // group holds (or a refused one) left it there.
        self.state.discard_staged();
        tracing::info!(
            group = %self.name,
            ?index,
            bytes = whole.received,
            ?staged,
            installed = ?(whole.started.elapsed() - staged),
            ok = r.is_ok(),
            "snapshot received"
        );
        r.map(Some).map_err(|e| WireError::Raft(e.to_string()))
    }

    /// A transfer ends unfinished, because of `why`: drop what it staged.
    fn abandon(&self, why: String) -> WireError {
        tracing::warn!(group = %self.name, reason = %why, "snapshot transfer abandoned; what it staged is dropped");
        self.state.discard_staged();
        WireError::Raft(why)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("raft: {0}")]
    Raft(String),
    #[error("group {0} is still being deleted from this node")]
    Dropping(String),
}

pub struct RaftHost {
    node_id: u64,
    storage: Arc<Storage>,
    peers: Arc<Peers>,
    config: Arc<openraft::Config>,
    log_policy: crate::log_gc::LogPolicy,
    pacer: Arc<SnapshotPacer>,
    groups: RwLock<BTreeMap<String, GroupHandle>>,
    starting: tokio::sync::Mutex<()>,
    /// Groups whose data is being deleted in the background; none of them
    /// starts again until that is done.
    dropping: Arc<std::sync::Mutex<BTreeSet<String>>>,
    app: OnceLock<Arc<dyn AppHandler>>,
    /// Frames refused for claiming another node (see [`PeerId`]).
    forbidden: std::sync::atomic::AtomicU64,
}

impl RaftHost {
    pub fn new(
        node_id: u64,
        storage: Arc<Storage>,
        connector: Arc<dyn Connector>,
        tuning: &RaftTuning,
    ) -> Result<Arc<Self>, HostError> {
        let config = tuning.to_config("tidal").map_err(HostError::Raft)?;
        Ok(Arc::new(Self {
            node_id,
            storage,
            peers: Peers::new(connector, tuning.max_frame_bytes),
            config: Arc::new(config),
            log_policy: crate::log_gc::LogPolicy {
                keep_after_snapshot: tuning.keep_after_snapshot,
                hold: Duration::from_millis(tuning.log_hold_ms),
                snapshot_bytes: tuning.snapshot_bytes,
            },
            pacer: SnapshotPacer::new(tuning.snapshot_rate_bytes),
            groups: RwLock::default(),
            starting: tokio::sync::Mutex::new(()),
            dropping: Arc::default(),
            app: OnceLock::new(),
            forbidden: Default::default(),
        }))
    }

    /// Peer frames refused so far for claiming another node than the
    /// peer's certificate names.
    pub fn forbidden_frames(&self) -> u64 {
        self.forbidden.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    /// Install the handler for app frames; only the first call counts.
    pub fn set_app_handler(&self, h: Arc<dyn AppHandler>) {
        let _ = self.app.set(h);
    }

    pub fn group(&self, name: &str) -> Option<GroupHandle> {
        self.groups.read().expect("groups lock").get(name).cloned()
    }

    pub fn groups(&self) -> Vec<GroupHandle> {
        let mut v: Vec<_> = self.groups.read().expect("groups lock").values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Start `name` (or return it if running), recording it as hosted here.
    pub async fn start_group(
        &self,
        name: &str,
        epoch: u64,
        machine: Arc<dyn Machine>,
    ) -> Result<GroupHandle, HostError> {
        let _guard = self.starting.lock().await;
        if let Some(g) = self.group(name) {
            return Ok(g);
        }
        if self.dropping(name) {
            return Err(HostError::Dropping(name.to_string()));
        }
        let owned = name.to_string();
        self.storage
            .log()
            .writer()
            .call(true, move |txn| {
                let mut t = txn.open_table(GROUPS).map_err(|e| e.to_string())?;
                t.insert(owned.as_str(), epoch).map_err(|e| e.to_string())?;
                let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
                meta.remove((owned.as_str(), LEFT)).map_err(|e| e.to_string())?;
                Ok(())
            })
            .await?;
        let state = GroupStateMachine::new(name, self.storage.clone(), machine)
            .map_err(|e| HostError::Store(StoreError::Db(e.to_string())))?;
        let sent = Arc::new(SentBytes::default());
        let log = LogStore::new(name, self.storage.clone());
        let appended = log.appended();
        let raft = Raft::new(
            self.node_id,
            self.config.clone(),
            GroupNetwork::new(name, epoch, self.peers.clone(), sent.clone(), self.pacer.clone()),
            log,
            state.clone(),
        )
        .await
        .map_err(|e| HostError::Raft(e.to_string()))?;
        tokio::spawn(crate::log_gc::run(raft.clone(), sent.clone(), appended, self.log_policy));
        tokio::spawn(state.drive_backlog());
        let handle = GroupHandle { name: name.into(), raft, epoch, state, sent, incoming: Arc::default() };
        self.groups.write().expect("groups lock").insert(name.to_string(), handle.clone());
        tracing::info!(group = name, epoch, "group started");
        Ok(handle)
    }

    /// Bootstrap `name` with `members` if it has never been initialized.
    /// Safe to call on every member and every restart.
    pub async fn initialize(&self, name: &str, members: BTreeMap<u64, BasicNode>) -> Result<(), HostError> {
        let g = self.group(name).ok_or_else(|| HostError::Raft(format!("group {name} is not running")))?;
        if g.raft.is_initialized().await.map_err(|e| HostError::Raft(e.to_string()))? {
            return Ok(());
        }
        match g.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(openraft::errors::RaftError::APIError(openraft::errors::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(HostError::Raft(e.to_string())),
        }
    }

    /// Stop group `name` and delete everything this node stored for it:
    /// its replica has left this node. It does not come back at restart.
    pub async fn remove_group(&self, name: &str) -> Result<(), HostError> {
        self.drop_group(name, false).await
    }

    /// [`Self::remove_group`], remembering that the replica left: until the
    /// group starts here again, [`Self::left`] says so (a node that held
    /// a replica of a group bootstrapped from its flags must not bootstrap
    /// it again after a restart).
    pub async fn leave_group(&self, name: &str) -> Result<(), HostError> {
        self.drop_group(name, true).await
    }

    /// Whether this node's replica of `name` left it (see [`Self::leave_group`]).
    pub fn left(&self, name: &str) -> Result<bool, HostError> {
        self.marked(name, LEFT)
    }

    /// The log's metadata table, if it has been made.
    fn meta(&self) -> Result<Option<MetaTable>, HostError> {
        match self.storage.log().read()?.open_table(META) {
            Ok(t) => Ok(Some(t)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(HostError::Store(StoreError::db(e))),
        }
    }

    /// Whether the log's metadata holds `mark` for group `name`.
    fn marked(&self, name: &str, mark: &str) -> Result<bool, HostError> {
        let Some(t) = self.meta()? else { return Ok(false) };
        Ok(t.get((name, mark)).map_err(StoreError::db)?.is_some())
    }

    /// Whether `name`'s data is still being deleted here, or a deletion
    /// of it failed or was cut short and awaits a restart: it cannot start
    /// until its data is gone.
    pub fn dropping(&self, name: &str) -> bool {
        if self.dropping.lock().expect("dropping lock").contains(name) {
            return true;
        }
        // Unreadable: say so, rather than start on what may be left.
        self.marked(name, DROPPING).unwrap_or(true)
    }

    /// Groups whose deletion a restart cut short: their data is to go
    /// ([`Self::finish_drop`]) before anything else of theirs starts.
    pub fn unfinished_drops(&self) -> Result<Vec<String>, HostError> {
        let Some(t) = self.meta()? else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for row in redb::ReadableTable::iter(&t).map_err(StoreError::db)? {
            let (k, _) = row.map_err(StoreError::db)?;
            let (group, name) = k.value();
            if name == DROPPING {
                out.push(group.to_string());
            }
        }
        Ok(out)
    }

    /// Delete what is left of `name`, whose drop a restart cut short:
    /// `machine` reads its state (none when it cannot be opened, in which
    /// case only its log and metadata go).
    pub async fn finish_drop(&self, name: &str, machine: Option<Arc<dyn Machine>>) -> Result<(), HostError> {
        let state = match machine {
            Some(m) => Some(
                GroupStateMachine::new(name, self.storage.clone(), m)
                    .map_err(|e| HostError::Store(StoreError::Db(e.to_string())))?,
            ),
            None => None,
        };
        purge_dropped(&self.storage, name, state.as_ref()).await
    }

    /// Stop `name` and record, durably, that it is not hosted here any
    /// more and that its data is to go; then delete the data in the
    /// background, a piece at a time ([`purge_dropped`]). Until that ends
    /// the group cannot start here again; a restart finishes it.
    async fn drop_group(&self, name: &str, mark_left: bool) -> Result<(), HostError> {
        let _guard = self.starting.lock().await;
        let Some(g) = self.groups.write().expect("groups lock").remove(name) else {
            return Ok(());
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), g.raft.shutdown()).await;
        let owned = name.to_string();
        self.storage
            .log()
            .writer()
            .call(true, move |txn| {
                let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
                meta.insert((owned.as_str(), DROPPING), [1u8].as_slice()).map_err(|e| e.to_string())?;
                // In the entry that stops the group starting again at a
                // restart, so that one of the two always holds.
                if mark_left {
                    meta.insert((owned.as_str(), LEFT), [1u8].as_slice()).map_err(|e| e.to_string())?;
                }
                drop(meta);
                let mut groups = txn.open_table(GROUPS).map_err(|e| e.to_string())?;
                groups.remove(owned.as_str()).map_err(|e| e.to_string())?;
                Ok(())
            })
            .await?;
        self.dropping.lock().expect("dropping lock").insert(name.to_string());
        let (storage, dropping, name) = (self.storage.clone(), self.dropping.clone(), name.to_string());
        tokio::spawn(async move {
            let purged = purge_dropped(&storage, &name, Some(&g.state)).await;
            // Gone before the name may start again.
            drop(g);
            match purged {
                Ok(()) => {
                    tracing::info!(group = name, "replica removed from this node, its data purged");
                    dropping.lock().expect("dropping lock").remove(&name);
                }
                // The name stays blocked: what is left must not be read as
                // a new replica's.
                Err(e) => {
                    tracing::warn!(group = name, error = %e, "purging a removed replica failed; a restart finishes it")
                }
            }
        });
        Ok(())
    }

    /// Stop every group and write what each applied in memory to the
    /// state file (a restart need not re-apply it); the storage writer
    /// finishes what is queued.
    pub async fn shutdown(&self) {
        let groups = self.groups();
        for g in groups {
            let _ = tokio::time::timeout(Duration::from_secs(3), g.raft.shutdown()).await;
            if let Err(e) = g.state.flush(false).await {
                tracing::warn!(group = %g.name, error = %e, "could not flush applied state; a restart re-applies it");
            }
        }
    }
}

/// The node a Raft frame says it comes from: the candidate of a vote, the
/// leader of an append, a snapshot or a leadership transfer.
fn claimed_sender(body: &Request) -> Option<u64> {
    match body {
        Request::Append(r) => Some(r.vote.leader_id().node_id),
        Request::Vote(r) => Some(r.vote.leader_id().node_id),
        Request::Snapshot { vote, .. } => Some(vote.leader_id().node_id),
        Request::TransferLeader(r) => Some(r.from_leader().leader_id().node_id),
        Request::App(_) => None,
    }
}

impl Dispatch for RaftHost {
    fn dispatch(
        &self,
        from: PeerId,
        group: String,
        epoch: u64,
        body: Request,
    ) -> BoxFuture<Result<Response, WireError>> {
        if let Some(claimed) = claimed_sender(&body).filter(|n| !from.may_speak_for(*n)) {
            self.forbidden.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let msg = format!("a frame for {group} claims node {claimed}, the peer's certificate says {from:?}");
            tracing::warn!("{msg}");
            return Box::pin(async move { Err(WireError::Forbidden(msg)) });
        }
        if let Request::App(bytes) = body {
            let Some(app) = self.app.get().cloned() else {
                return Box::pin(async { Err(WireError::NoHandler) });
            };
            let fut = app.handle(from, group, epoch, bytes);
            return Box::pin(async move { fut.await.map(Response::App) });
        }
        let Some(g) = self.group(&group) else {
            let node = self.node_id;
            return Box::pin(async move { Err(WireError::UnknownGroup { node, group }) });
        };
        if epoch < g.epoch {
            let current = g.epoch;
            return Box::pin(async move { Err(WireError::StaleEpoch { group, got: epoch, current }) });
        }
        Box::pin(async move {
            match body {
                Request::Append(r) => {
                    g.raft.append_entries(r).await.map(Response::Append).map_err(|e| WireError::Raft(e.to_string()))
                }
                Request::Vote(r) => {
                    g.raft.vote(r).await.map(Response::Vote).map_err(|e| WireError::Raft(e.to_string()))
                }
                Request::Snapshot { vote, meta, offset, data, done } => {
                    g.receive_snapshot(vote, meta, offset, data, done).await.map(Response::Snapshot)
                }
                Request::TransferLeader(r) => g
                    .raft
                    .handle_transfer_leader(r)
                    .await
                    .map(Response::TransferLeader)
                    .map_err(|e| WireError::Raft(e.to_string())),
                Request::App(_) => unreachable!("handled above"),
            }
        })
    }
}

/// Delete everything this node stores for `name`, a piece at a time and
/// taking turns with the node's other purges (see
/// [`crate::log_store`]): its state (through `state`, when there is one),
/// then its log, then, durably, its metadata (keeping the mark that the
/// replica left, when there is one).
async fn purge_dropped(storage: &Arc<Storage>, name: &str, state: Option<&GroupStateMachine>) -> Result<(), HostError> {
    if let Some(state) = state {
        state.purge().await.map_err(|e| HostError::Store(StoreError::Db(e.to_string())))?;
    }
    loop {
        let _turn = storage.purge_turn().lock().await;
        let group = name.to_string();
        let (done, _) =
            crate::log_store::paced(storage.log(), move |txn| crate::log_store::delete_some(txn, &group, u64::MAX))
                .await;
        if done? {
            break;
        }
    }
    let group = name.to_string();
    storage
        .log()
        .writer()
        .call(true, move |txn| {
            // A handful of rows per group, as in `purge_meta`.
            let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
            meta.retain(|(g, key), _| g != group || key == LEFT).map_err(|e| e.to_string())
        })
        .await?;
    Ok(())
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
