//! The move executor: carries slot moves out, step by step, on the
//! control-plane leader.
//!
//! ```text
//!   CP leader                                   PRG leaders
//!   ┌──────────────────────────┐  slot command   ┌──────────────┐
//!   │ plan(move) ─> actions ───│───────────────> │ source A     │
//!   │   (tidal_core::slot_move)│  copy / catch-up│    rows ↓    │
//!   │ journal each phase in _cp│───────────────> │ target B     │
//!   └──────────────────────────┘                 └──────────────┘
//! ```
//!
//! What to do next is decided by [`tidal_core::slot_move::plan`] from the
//! move's record in the control plane; this module only performs it,
//! through [`MoveOps`] (which the node implements with its router), and
//! journals the outcome with a command conditioned on the phase it
//! expects. Every step is idempotent, so when the control-plane leader
//! changes, the new leader's executor starts the current phase over.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidal_core::ownership::{MoveId, SlotCommand};
use tidal_core::replica_move::ReplicaMove;
use tidal_core::slot_move::{
    after_round, fence_overrun, on_failure, plan, Action, CatchUp, MoveLimits, MovePhase, SlotMove,
};
use tidal_core::{NodeId, PrgId};
use tidal_raft::transport::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::{ControlPlane, CpError};
use crate::command::{CpCommand, CpReply};
use crate::failpoint;
use crate::replica_executor::MemberChange;

/// Why a step did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    /// The source cannot say what changed since the copy began (a replica
    /// restarted): the copy cannot be completed.
    #[error("changes were lost: {0}")]
    Lost(String),
    /// The PRG refused the step: it will not succeed by retrying.
    #[error("refused: {0}")]
    Refused(String),
    /// No answer, or no leader: it may succeed later.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// One chunk copied by the target's leader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    pub rows: u64,
    pub bytes: u64,
    /// The last row's stored key, where the next chunk starts.
    pub last: Option<Vec<u8>>,
    /// The end of the slots was reached.
    pub done: bool,
    /// For a catch-up round: the source's log index the rows are current as of.
    pub at: u64,
}

/// What the executor needs done on PRGs, through their leaders.
pub trait MoveOps: Send + Sync + 'static {
    /// Propose `cmd` on `prg`; the answer is the log index it applied at.
    fn slot_command(&self, prg: PrgId, cmd: SlotCommand) -> BoxFuture<Result<u64, StepError>>;
    /// Have the target's leader copy the rows of `m` after `after`, up to
    /// `max_bytes`, from the source's leader into its own log.
    fn copy_rows(&self, m: SlotMove, after: Option<Vec<u8>>, max_bytes: u64) -> BoxFuture<Result<Copied, StepError>>;
    /// Have the target's leader pull the rows of `m` changed after the
    /// source's log index `after`, into its own log.
    fn catch_up(&self, m: SlotMove, after: u64) -> BoxFuture<Result<Copied, StepError>>;
    /// Have `prg`'s leader change its membership; the answer is a log index
    /// (or, for `LearnerLag`, the entries the learner is behind).
    fn members(&self, prg: PrgId, change: MemberChange) -> BoxFuture<Result<u64, StepError>>;
    /// How far `node`, a learner of `prg`, has come: the entries it is
    /// behind, and the bytes `prg`'s leader has sent it.
    fn learner(&self, prg: PrgId, node: NodeId) -> BoxFuture<Result<(u64, u64), StepError>>;
    /// Have `prg`'s leader hand its leadership to member `to`.
    fn transfer_leader(&self, prg: PrgId, to: NodeId) -> BoxFuture<Result<(), StepError>>;
}

/// How moves are paced.
#[derive(Debug, Clone, Copy)]
pub struct ExecutorConfig {
    pub limits: MoveLimits,
    /// Most bytes per copy step (the target's leader pipelines a step's
    /// fetches and proposals); under a rate limit, a quarter of a second's
    /// worth, so the copy does not come in bursts.
    pub chunk_bytes: u64,
    /// Most bytes per second moves copy to or from any one node (0: no
    /// limit).
    pub rate_bytes: u64,
    /// How long an uncommitted move retries an unavailable PRG before it
    /// rolls back.
    pub retry_budget: Duration,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            limits: MoveLimits::default(),
            chunk_bytes: 8 << 20,
            rate_bytes: 0,
            retry_budget: Duration::from_secs(10),
        }
    }
}

pub struct MoveExecutor {
    pub(crate) cp: Arc<ControlPlane>,
    pub(crate) ops: Arc<dyn MoveOps>,
    pub(crate) config: ExecutorConfig,
    running: Mutex<BTreeSet<MoveId>>,
    /// Per node, when its copy budget is next free (the rate limit).
    node_free: Mutex<std::collections::BTreeMap<NodeId, Instant>>,
}

/// Failures in a row of a phase that cannot roll back before the move
/// notes that it is stuck (and again at each power of two after that).
const STUCK_AFTER: u32 = 5;

/// Whether `failures` in a row of a step that cannot roll back call for a
/// note on the move.
fn stuck(failures: u32) -> bool {
    failures == STUCK_AFTER || (failures > STUCK_AFTER && failures.is_power_of_two())
}

/// A kind of move (slot or replica): what [`MoveExecutor::drive`] needs
/// to read one, take it a step further and record how a step went.
pub(crate) trait Driven: Sized {
    /// The kind, for logs.
    const KIND: &'static str;
    /// The move as this replica last applied it.
    fn load(ex: &MoveExecutor, id: MoveId) -> Option<Self>;
    fn phase_name(&self) -> &'static str;
    fn finished(&self) -> bool;
    /// An operator asked to cancel, and the move can still roll back.
    fn cancel_due(&self) -> bool;
    /// Whether a failed step rolls the move back (otherwise it is retried).
    fn rolls_back(&self) -> bool;
    /// Record the move as rolling back, because of `why`.
    async fn roll_back(&self, ex: &MoveExecutor, why: String) -> Result<(), Stop>;
    /// Note `why` on the move, in the phase it is in.
    async fn note(&self, ex: &MoveExecutor, why: String) -> Result<(), Stop>;
    /// Run the steps that take the move to its next phase.
    async fn step(&self, ex: &MoveExecutor) -> Result<(), Stop>;
}

impl Driven for SlotMove {
    const KIND: &'static str = "slot";

    fn load(ex: &MoveExecutor, id: MoveId) -> Option<Self> {
        ex.current(id)
    }

    fn phase_name(&self) -> &'static str {
        self.phase.name()
    }

    fn finished(&self) -> bool {
        self.phase.is_finished()
    }

    fn cancel_due(&self) -> bool {
        self.cancel_requested && self.phase.may_become(MovePhase::RollingBack)
    }

    fn rolls_back(&self) -> bool {
        let next = on_failure(self.phase);
        next != self.phase && self.phase.may_become(next)
    }

    async fn roll_back(&self, ex: &MoveExecutor, why: String) -> Result<(), Stop> {
        ex.become_(self, MovePhase::RollingBack, Some(why)).await
    }

    async fn note(&self, ex: &MoveExecutor, why: String) -> Result<(), Stop> {
        ex.become_(self, self.phase, Some(why)).await
    }

    async fn step(&self, ex: &MoveExecutor) -> Result<(), Stop> {
        ex.run_phase(self).await
    }
}

/// How a phase ended when it did not finish.
pub(crate) enum Stop {
    /// This node no longer leads the control plane, or the move changed
    /// under us: read it again.
    Reread,
    /// Roll back (before the commit) or retry (after it), with this reason.
    Failed(String),
}

impl From<CpError> for Stop {
    fn from(e: CpError) -> Self {
        match e {
            CpError::Refused(_) | CpError::NotLeader => Stop::Reread,
            CpError::Unavailable(e) => Stop::Failed(format!("control plane: {e}")),
        }
    }
}

impl MoveExecutor {
    pub fn new(cp: Arc<ControlPlane>, ops: Arc<dyn MoveOps>, config: ExecutorConfig) -> Arc<Self> {
        Arc::new(Self { cp, ops, config, running: Mutex::default(), node_free: Mutex::default() })
    }

    /// Watch for unfinished moves while this node leads the control plane,
    /// and drive each one; stops when `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if self.cp.is_local_leader() {
                for id in self.unfinished() {
                    if self.running.lock().expect("running lock").insert(id) {
                        let me = self.clone();
                        tokio::spawn(async move {
                            if me.cp.local_machine().is_some_and(|c| c.state().replica_moves.contains_key(&id)) {
                                me.drive::<ReplicaMove>(id).await;
                            } else {
                                me.drive::<SlotMove>(id).await;
                            }
                            me.running.lock().expect("running lock").remove(&id);
                        });
                    }
                }
            }
            tokio::select! {
                biased;
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    fn unfinished(&self) -> Vec<MoveId> {
        let Some(machine) = self.cp.local_machine() else { return Vec::new() };
        let state = machine.state();
        let slots = state.moves.values().filter(|m| !m.phase.is_finished()).map(|m| m.id);
        let replicas = state.replica_moves.values().filter(|m| !m.phase.is_finished()).map(|m| m.id);
        slots.chain(replicas).collect()
    }

    /// The move as this replica last applied it.
    fn current(&self, id: MoveId) -> Option<SlotMove> {
        self.cp.local_machine()?.state().moves.get(&id).cloned()
    }

    /// Drive move `id` of kind `M` to its end, phase by phase, while this
    /// node leads the control plane. Before the point of no return a failed
    /// step (or a cancel) rolls the move back; after it the step is retried,
    /// and one that keeps failing is noted on the move, so that an operator
    /// sees why it is not finishing.
    async fn drive<M: Driven>(&self, id: MoveId) {
        let mut failures = 0u32;
        loop {
            if !self.cp.is_local_leader() {
                return;
            }
            if let Err(e) = self.cp.local_barrier().await {
                tracing::debug!(move_id = id, error = %e, "control-plane state not current yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let Some(m) = M::load(self, id) else { return };
            if m.finished() {
                tracing::info!(move_id = id, kind = M::KIND, phase = m.phase_name(), "move finished");
                return;
            }
            if m.cancel_due() {
                let _ = m.roll_back(self, "cancelled by an operator".into()).await;
                continue;
            }
            match m.step(self).await {
                Ok(()) => failures = 0,
                Err(Stop::Reread) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(Stop::Failed(why)) => {
                    failures += 1;
                    tracing::warn!(move_id = id, kind = M::KIND, phase = m.phase_name(), error = %why, "move step failed");
                    if m.rolls_back() {
                        let _ = m.roll_back(self, why).await;
                    } else {
                        if stuck(failures) {
                            let note = format!("{failures} failures in {}; still retrying: {why}", m.phase_name());
                            let _ = m.note(self, note).await;
                        }
                        tokio::time::sleep(Duration::from_millis((100 * u64::from(failures)).min(2_000))).await;
                    }
                }
            }
        }
    }

    async fn become_(&self, m: &SlotMove, phase: MovePhase, error: Option<String>) -> Result<(), Stop> {
        let cmd = CpCommand::UpdateMove { id: m.id, expect: m.phase, phase, progress: None, error };
        self.cp.propose_as_leader(cmd).await?;
        Ok(())
    }

    /// Run the actions that take `m` to its next phase.
    async fn run_phase(&self, m: &SlotMove) -> Result<(), Stop> {
        let mut m = m.clone();
        for action in plan(&m) {
            let step = format!("slot-move/after-{}", action.name());
            match action {
                Action::Source(cmd) => {
                    let at = self
                        .retry(m.id, m.phase.is_committed(), || self.ops.slot_command(m.source(), cmd.clone()))
                        .await?;
                    if let SlotCommand::BeginExport { .. } = cmd {
                        if m.progress.delta_from.is_none() {
                            m.progress.delta_from = Some(at);
                            self.save(&m).await?;
                        }
                    }
                }
                Action::Target(cmd) => {
                    self.retry(m.id, m.phase.is_committed(), || self.ops.slot_command(m.target(), cmd.clone())).await?;
                }
                Action::CopyRows => self.copy(&mut m).await?,
                Action::CatchUp => {
                    loop {
                        let bytes = self.pull(&mut m).await?;
                        failpoint::check("slot-move/after-catch-up-round")?;
                        if self.cancelled(&m) {
                            return Err(Stop::Reread);
                        }
                        if after_round(bytes, m.progress.rounds, &self.config.limits) == CatchUp::Fence {
                            break;
                        }
                    }
                    self.save(&m).await?;
                }
                Action::FinalDelta => {
                    self.pull(&mut m).await?;
                }
                Action::Commit => {
                    let now = self.cp.now_ms();
                    if fence_overrun(&m, now, &self.config.limits) {
                        return Err(Stop::Failed(format!(
                            "the fence lasted longer than its budget of {} ms",
                            self.config.limits.fence_budget_ms
                        )));
                    }
                    match self.cp.propose_as_leader(CpCommand::CommitMove { id: m.id }).await {
                        Ok(CpReply::Ok { routing_epoch, .. }) => {
                            tracing::info!(move_id = m.id, routing_epoch, "move committed");
                        }
                        Ok(other) => return Err(Stop::Failed(format!("unexpected answer {other:?}"))),
                        Err(e) => return Err(e.into()),
                    }
                }
                Action::Become(phase) => {
                    let cmd = CpCommand::UpdateMove {
                        id: m.id,
                        expect: m.phase,
                        phase,
                        progress: Some(m.progress.clone()),
                        error: None,
                    };
                    self.cp.propose_as_leader(cmd).await?;
                }
            }
            failpoint::check(&step)?;
        }
        Ok(())
    }

    fn cancelled(&self, m: &SlotMove) -> bool {
        !m.phase.is_committed() && self.current(m.id).is_some_and(|c| c.cancel_requested)
    }

    /// Save the copy's progress so a new executor resumes from it.
    async fn save(&self, m: &SlotMove) -> Result<(), Stop> {
        let cmd = CpCommand::MoveProgress { id: m.id, expect: m.phase, progress: m.progress.clone() };
        self.cp.propose_as_leader(cmd).await?;
        Ok(())
    }

    /// Copy the slots' rows from the saved cursor to the end.
    async fn copy(&self, m: &mut SlotMove) -> Result<(), Stop> {
        let mut saved = Instant::now();
        while !m.progress.copied {
            let (after, max) = (m.progress.cursor.clone(), self.chunk());
            let chunk =
                self.retry(m.id, m.phase.is_committed(), || self.ops.copy_rows(m.clone(), after.clone(), max)).await?;
            m.progress.rows += chunk.rows;
            m.progress.bytes += chunk.bytes;
            if chunk.last.is_some() {
                m.progress.cursor = chunk.last;
            }
            m.progress.copied = chunk.done;
            failpoint::check("slot-move/after-copy-chunk")?;
            if saved.elapsed() >= Duration::from_secs(1) {
                self.save(m).await?;
                saved = Instant::now();
            }
            if self.cancelled(m) {
                return Err(Stop::Reread);
            }
            self.pace(m, chunk.bytes).await;
        }
        Ok(())
    }

    /// Bytes per copy step: see [`ExecutorConfig::chunk_bytes`].
    fn chunk(&self) -> u64 {
        tidal_raft::transport::paced_piece_bytes(self.config.rate_bytes, self.config.chunk_bytes)
    }

    /// One catch-up round; returns the bytes it carried.
    async fn pull(&self, m: &mut SlotMove) -> Result<u64, Stop> {
        let Some(after) = m.progress.delta_from else {
            return Err(Stop::Failed("the source's export point is unknown".into()));
        };
        let got = self.retry(m.id, m.phase.is_committed(), || self.ops.catch_up(m.clone(), after)).await?;
        m.progress.rows += got.rows;
        m.progress.bytes += got.bytes;
        m.progress.delta_from = Some(got.at.max(after));
        m.progress.rounds += 1;
        Ok(got.bytes)
    }

    /// Account `bytes` just copied by `m` to every node holding the source
    /// or the target, and sleep until each of them is back under the rate
    /// limit: moves sharing a node share its budget.
    async fn pace(&self, m: &SlotMove, bytes: u64) {
        if self.config.rate_bytes == 0 || bytes == 0 {
            return;
        }
        let nodes: BTreeSet<NodeId> = match self.cp.local_machine() {
            Some(c) => {
                let state = c.state();
                [m.source(), m.target()]
                    .iter()
                    .filter_map(|p| state.placements.get(p))
                    .flat_map(|p| p.members.iter().copied())
                    .collect()
            }
            None => BTreeSet::new(),
        };
        let cost = Duration::from_secs_f64(bytes as f64 / self.config.rate_bytes as f64);
        let until = {
            let mut free = self.node_free.lock().expect("rate lock");
            let now = Instant::now();
            let start = nodes.iter().map(|n| free.get(n).copied().unwrap_or(now).max(now)).max().unwrap_or(now);
            let until = start + cost;
            for n in nodes {
                free.insert(n, until);
            }
            until
        };
        tokio::time::sleep_until(until).await;
    }

    /// Run `op` until it succeeds, retrying while its PRG is unavailable
    /// for up to the retry budget (without limit once the move committed).
    /// `committed` is whether the move can no longer roll back; `id` names
    /// it in the log. Slot and replica moves both retry through here.
    pub(crate) async fn retry<T>(
        &self,
        id: MoveId,
        committed: bool,
        op: impl Fn() -> BoxFuture<Result<T, StepError>>,
    ) -> Result<T, Stop> {
        let deadline = Instant::now() + self.config.retry_budget;
        let mut attempt = 0u64;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(StepError::Unavailable(e)) if committed || Instant::now() < deadline => {
                    attempt += 1;
                    tracing::debug!(move_id = id, error = %e, "move step will be retried");
                    if !self.cp.is_local_leader() {
                        return Err(Stop::Reread);
                    }
                    tokio::time::sleep(Duration::from_millis((50 * attempt).min(1_000))).await;
                }
                Err(e) => return Err(Stop::Failed(e.to_string())),
            }
        }
    }
}
