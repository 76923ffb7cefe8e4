//! Carrying replica moves out (see [`tidal_core::replica_move`]): the part
//! of the move executor that changes a PRG's members through its leader.
//!
//! ```text
//!  AddingLearner: AddLearner(Y) on the leader; poll LearnerLag(Y) until small
//!  Promoting:     ReplaceVoter(X -> Y) on the leader (joint consensus);
//!                 CommitReplicaMove in the control plane
//!  RollingBack:   RemoveLearner(Y); RolledBack
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidal_core::ownership::MoveId;
use tidal_core::replica_move::{on_failure, ReplicaMove, ReplicaPhase, CAUGHT_UP_ENTRIES};
use tidal_core::NodeId;
use tokio::time::Instant;

use crate::command::CpCommand;
use crate::executor::{Driven, MoveExecutor, Stop};
use crate::failpoint;

/// A change of a PRG's membership, made by its leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberChange {
    /// Add `node` (at peer address `addr`) as a learner; it catches up by
    /// snapshot and log. Already there: nothing to do.
    AddLearner { node: NodeId, addr: String },
    /// How many entries learner `node` is behind the leader's log (still
    /// answered for executors that do not ask for `LearnerProgress`).
    LearnerLag { node: NodeId },
    /// Make the voters the current ones with `from` replaced by `to`.
    /// Already so: nothing to do.
    ReplaceVoter { from: NodeId, to: NodeId },
    /// Remove learner `node`. Not there: nothing to do.
    RemoveLearner { node: NodeId },
    /// How far learner `node` has come: the entries it is behind the
    /// leader's log, and the bytes the leader has sent it.
    LearnerProgress { node: NodeId },
}

/// How long a learner may take to catch up before the move rolls back.
const CATCH_UP_BUDGET: Duration = Duration::from_secs(300);

impl Driven for ReplicaMove {
    const KIND: &'static str = "replica";

    fn load(ex: &MoveExecutor, id: MoveId) -> Option<Self> {
        ex.replica(id)
    }

    fn phase_name(&self) -> &'static str {
        self.phase.name()
    }

    fn finished(&self) -> bool {
        self.phase.is_finished()
    }

    fn cancel_due(&self) -> bool {
        self.cancel_requested && self.phase.may_become(ReplicaPhase::RollingBack)
    }

    fn rolls_back(&self) -> bool {
        on_failure(self.phase) != self.phase
    }

    async fn roll_back(&self, ex: &MoveExecutor, why: String) -> Result<(), Stop> {
        ex.replica_phase(self, ReplicaPhase::RollingBack, None, Some(&why)).await
    }

    async fn note(&self, ex: &MoveExecutor, why: String) -> Result<(), Stop> {
        ex.replica_phase(self, self.phase, None, Some(&why)).await
    }

    async fn step(&self, ex: &MoveExecutor) -> Result<(), Stop> {
        ex.replica_step(self).await
    }
}

impl MoveExecutor {
    fn replica(&self, id: MoveId) -> Option<ReplicaMove> {
        self.cp.local_machine()?.state().replica_moves.get(&id).cloned()
    }

    async fn replica_phase(
        &self,
        m: &ReplicaMove,
        phase: ReplicaPhase,
        lag: Option<u64>,
        error: Option<&str>,
    ) -> Result<(), Stop> {
        let cmd =
            CpCommand::UpdateReplicaMove { id: m.id, expect: m.phase, phase, lag, error: error.map(str::to_string) };
        self.cp.propose(cmd).await?;
        Ok(())
    }

    async fn change(&self, m: &ReplicaMove, change: MemberChange) -> Result<u64, Stop> {
        self.retry(m.id, m.phase.is_committed(), || self.ops.members(m.prg.clone(), change.clone())).await
    }

    async fn replica_step(&self, m: &ReplicaMove) -> Result<(), Stop> {
        let failed = |why: &str| Stop::Failed(why.to_string());
        match m.phase {
            ReplicaPhase::AddingLearner => {
                let state =
                    self.cp.local_machine().map(|c| c.state()).ok_or_else(|| failed("no local control plane"))?;
                let addr = state
                    .nodes
                    .get(&m.to)
                    .map(|n| n.peer_addr.clone())
                    .ok_or_else(|| failed("the target node is gone"))?;
                self.change(m, MemberChange::AddLearner { node: m.to, addr }).await?;
                failpoint::check("replica-move/after-add-learner")?;
                let started = Instant::now();
                let mut reported = Instant::now();
                let bytes = loop {
                    let (lag, bytes) = self.retry(m.id, false, || self.ops.learner(m.prg.clone(), m.to)).await?;
                    if lag <= CAUGHT_UP_ENTRIES {
                        break bytes;
                    }
                    if started.elapsed() > CATCH_UP_BUDGET {
                        return Err(Stop::Failed(format!(
                            "the learner is still {lag} entries behind after {CATCH_UP_BUDGET:?}"
                        )));
                    }
                    if self.replica(m.id).is_some_and(|c| c.cancel_requested) {
                        return Ok(());
                    }
                    if reported.elapsed() > Duration::from_secs(1) {
                        let progress = CpCommand::ReplicaProgress { id: m.id, expect: m.phase, lag, bytes };
                        self.cp.propose(progress).await?;
                        reported = Instant::now();
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                };
                self.cp.propose(CpCommand::ReplicaProgress { id: m.id, expect: m.phase, lag: 0, bytes }).await?;
                self.replica_phase(m, ReplicaPhase::Promoting, Some(0), None).await?;
                failpoint::check("replica-move/after-become-promoting")
            }
            ReplicaPhase::Promoting => {
                self.change(m, MemberChange::ReplaceVoter { from: m.from, to: m.to }).await?;
                failpoint::check("replica-move/after-replace-voter")?;
                self.cp.propose(CpCommand::CommitReplicaMove { id: m.id }).await?;
                failpoint::check("replica-move/after-commit")?;
                tracing::info!(move_id = m.id, prg = %m.prg, from = m.from, to = m.to, "replica moved");
                Ok(())
            }
            ReplicaPhase::RollingBack => {
                self.change(m, MemberChange::RemoveLearner { node: m.to }).await?;
                failpoint::check("replica-move/after-remove-learner")?;
                self.replica_phase(m, ReplicaPhase::RolledBack, None, None).await?;
                failpoint::check("replica-move/after-become-rolled-back")
            }
            ReplicaPhase::Done | ReplicaPhase::RolledBack => Ok(()),
        }
    }
}
