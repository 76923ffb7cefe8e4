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

/// How long a learner may go without progress before the move rolls back.
/// Progress is the leader sending it bytes (snapshot pieces or entries) or
/// its lag reaching a new low; a large replica takes as long as its bytes
/// take, and only one that stops coming closer fails.
const STALL_BUDGET: Duration = Duration::from_secs(120);

/// The bytes a move has sent its learner, from the PRG leader's count for
/// that peer. A new leader counts from 0: what the old one had counted is
/// kept, so the total never goes back; it starts from what the move's
/// record already holds.
struct SentTotal {
    recorded: u64,
    /// Counts of leaders before the current one, since this executor began.
    earlier: u64,
    last: u64,
}

impl SentTotal {
    fn new(recorded: u64) -> Self {
        Self { recorded, earlier: 0, last: 0 }
    }

    /// Take the leader's count now; the move's total.
    fn add(&mut self, count: u64) -> u64 {
        if count < self.last {
            self.earlier += self.last;
        }
        self.last = count;
        self.recorded = self.recorded.max(self.earlier + count);
        self.recorded
    }
}

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
        self.cp.propose_as_leader(cmd).await?;
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
                let mut progressed = Instant::now();
                let mut reported = Instant::now();
                let (mut least_lag, mut most_bytes) = (u64::MAX, 0);
                let mut sent = SentTotal::new(m.bytes);
                let bytes = loop {
                    let (lag, bytes) = self.retry(m.id, false, || self.ops.learner(m.prg.clone(), m.to)).await?;
                    let bytes = sent.add(bytes);
                    if lag <= CAUGHT_UP_ENTRIES {
                        break bytes;
                    }
                    if lag < least_lag || bytes > most_bytes {
                        (least_lag, most_bytes) = (least_lag.min(lag), most_bytes.max(bytes));
                        progressed = Instant::now();
                    } else if progressed.elapsed() > STALL_BUDGET {
                        return Err(Stop::Failed(format!(
                            "the learner is still {lag} entries behind and has taken nothing for {STALL_BUDGET:?}"
                        )));
                    }
                    if self.replica(m.id).is_some_and(|c| c.cancel_requested) {
                        return Ok(());
                    }
                    if reported.elapsed() > Duration::from_secs(1) {
                        let progress = CpCommand::ReplicaProgress { id: m.id, expect: m.phase, lag, bytes };
                        self.cp.propose_as_leader(progress).await?;
                        reported = Instant::now();
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                };
                self.cp
                    .propose_as_leader(CpCommand::ReplicaProgress { id: m.id, expect: m.phase, lag: 0, bytes })
                    .await?;
                self.replica_phase(m, ReplicaPhase::Promoting, Some(0), None).await?;
                failpoint::check("replica-move/after-become-promoting")
            }
            ReplicaPhase::Promoting => {
                self.change(m, MemberChange::ReplaceVoter { from: m.from, to: m.to }).await?;
                failpoint::check("replica-move/after-replace-voter")?;
                self.cp.propose_as_leader(CpCommand::CommitReplicaMove { id: m.id }).await?;
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

#[cfg(test)]
mod tests {
    use super::SentTotal;

    #[test]
    fn the_bytes_sent_never_go_back_when_the_leader_changes() {
        let mut t = SentTotal::new(0);
        assert_eq!(t.add(100), 100);
        assert_eq!(t.add(250), 250);
        // A new leader counts from 0.
        assert_eq!(t.add(40), 290);
        assert_eq!(t.add(60), 310);
    }

    #[test]
    fn a_resumed_move_keeps_what_its_record_holds() {
        // The executor restarted: the record says 500, this leader's count
        // is behind it (it is new) and then passes it.
        let mut t = SentTotal::new(500);
        assert_eq!(t.add(100), 500);
        assert_eq!(t.add(700), 700);
    }
}
