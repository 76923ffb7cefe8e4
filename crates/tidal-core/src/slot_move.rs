//! Slot moves: the record the control plane keeps of each, the checks a
//! new one must pass, and the pure decisions of its step machine.
//!
//! ```text
//!  Copying ──> CatchUp ──> Fenced ──(epoch bump)──> Committed ──> Done
//!     │           │          │                        (rolls forward only)
//!     └───────────┴──────────┴──> RollingBack ──> RolledBack
//! ```
//!
//! * **Copying**: the source starts tracking changes to the slots
//!   (`BeginExport`), the target marks them `Importing`, and the target's
//!   leader copies the slots' rows from the source's leader in chunks.
//! * **CatchUp**: the target pulls what changed since, round after round,
//!   until a round is small.
//! * **Fenced**: the source refuses writes to the slots; the target pulls
//!   the final delta; the control plane bumps the routing epoch with the
//!   slots now owned by the target, which makes the move `Committed`.
//! * **Committed**: the source releases the slots (and drops their rows),
//!   then the target adopts them and serves them.
//!
//! Before the bump any failure, timeout or cancel rolls the move back: the
//! source is unfenced and the target's copy dropped. After it the move
//! only rolls forward. The executor (in `tidal-control`) carries the steps
//! out; what to do next is decided here.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::cluster::ClusterState;
use crate::ids::PrgId;
use crate::ownership::{MoveId, SlotCommand};
use crate::slot::MAX_SLOTS;

/// Where a slot move stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MovePhase {
    Copying,
    CatchUp,
    Fenced,
    Committed,
    Done,
    RollingBack,
    RolledBack,
}

impl MovePhase {
    /// No more steps will run.
    pub fn is_finished(self) -> bool {
        matches!(self, MovePhase::Done | MovePhase::RolledBack)
    }

    /// The routing epoch has been bumped: the move only rolls forward.
    pub fn is_committed(self) -> bool {
        matches!(self, MovePhase::Committed | MovePhase::Done)
    }

    /// Whether a move may go from `self` to `next`.
    pub fn may_become(self, next: MovePhase) -> bool {
        use MovePhase::*;
        matches!(
            (self, next),
            (Copying, CatchUp)
                | (CatchUp, Fenced)
                | (Fenced, Committed)
                | (Committed, Done)
                | (Copying | CatchUp | Fenced, RollingBack)
                | (RollingBack, RolledBack)
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            MovePhase::Copying => "copying",
            MovePhase::CatchUp => "catch-up",
            MovePhase::Fenced => "fenced",
            MovePhase::Committed => "committed",
            MovePhase::Done => "done",
            MovePhase::RollingBack => "rolling-back",
            MovePhase::RolledBack => "rolled-back",
        }
    }
}

/// How far the copy has come; saved in the control plane now and then, so
/// a new executor resumes instead of starting over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveProgress {
    /// Bytes of rows copied (snapshot and deltas).
    pub bytes: u64,
    /// Rows copied.
    pub rows: u64,
    /// The last row copied by the snapshot; `None` before the first chunk.
    pub cursor: Option<Vec<u8>>,
    /// The snapshot copy has reached the end of the slots.
    pub copied: bool,
    /// The source's log index after which changes are pulled next; set by
    /// `BeginExport`.
    pub delta_from: Option<u64>,
    /// Catch-up rounds so far.
    pub rounds: u32,
}

/// A slot move as the control plane records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMove {
    pub id: MoveId,
    pub tenant: String,
    /// Sorted, distinct.
    pub slots: Vec<u32>,
    /// PRG index of the source.
    pub from: u32,
    /// PRG index of the target.
    pub to: u32,
    pub phase: MovePhase,
    pub progress: MoveProgress,
    /// The routing epoch the move was planned at, and the one that made it
    /// committed.
    pub planned_epoch: u64,
    pub commit_epoch: Option<u64>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub fenced_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    /// An operator asked to cancel; honoured before the commit only.
    pub cancel_requested: bool,
    /// Why the move rolled back (or the last error it retried past).
    pub error: Option<String>,
}

impl SlotMove {
    pub fn source(&self) -> PrgId {
        PrgId::new(self.tenant.clone(), self.from)
    }

    pub fn target(&self) -> PrgId {
        PrgId::new(self.tenant.clone(), self.to)
    }

    /// Milliseconds from the fence to the end of the move (the target
    /// serving, or the source unfenced), once the move has finished.
    pub fn fence_window_ms(&self) -> Option<u64> {
        Some(self.finished_ms?.saturating_sub(self.fenced_ms?))
    }
}

/// Why a slot move cannot be created. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    #[error("unknown tenant '{0}'")]
    UnknownTenant(String),
    #[error("PRG {0} does not exist")]
    UnknownPrg(PrgId),
    #[error("target PRG {target} belongs to tenant '{}', not '{tenant}'", target.tenant)]
    OtherTenant { target: PrgId, tenant: String },
    #[error("no slots to move")]
    NoSlots,
    #[error("slot {slot} is out of range: tenant '{tenant}' has {slots} slots")]
    OutOfRange { tenant: String, slot: u32, slots: u32 },
    #[error("slots {first} and {other} are owned by different PRGs ({a} and {b}); move them separately")]
    SeveralSources { first: u32, other: u32, a: PrgId, b: PrgId },
    #[error("{prg} does not own slot {slot}")]
    NotOwned { prg: PrgId, slot: u32 },
    #[error("{0} already owns these slots")]
    SameTarget(PrgId),
    #[error("slot {slot} is already moving in move {id}")]
    AlreadyMoving { slot: u32, id: MoveId },
}

/// Check a request to move `slots` of `tenant` to PRG `to` (optionally
/// from a named source) against `state`, and return the source's index.
pub fn check_new_move(
    state: &ClusterState,
    tenant: &str,
    slots: &[u32],
    from: Option<u32>,
    to: &PrgId,
    active: &[&SlotMove],
) -> Result<u32, MoveError> {
    let t = state.tenants.get(tenant).ok_or_else(|| MoveError::UnknownTenant(tenant.to_string()))?;
    if to.tenant != tenant {
        return Err(MoveError::OtherTenant { target: to.clone(), tenant: tenant.to_string() });
    }
    if !state.placements.contains_key(to) {
        return Err(MoveError::UnknownPrg(to.clone()));
    }
    let first = *slots.first().ok_or(MoveError::NoSlots)?;
    for &slot in slots {
        if slot >= t.slots {
            return Err(MoveError::OutOfRange { tenant: tenant.to_string(), slot, slots: t.slots });
        }
    }
    let source = from.unwrap_or(t.owner[first as usize]);
    for &slot in slots {
        let owner = t.owner[slot as usize];
        if owner != source {
            if from.is_some() {
                return Err(MoveError::NotOwned { prg: PrgId::new(tenant, source), slot });
            }
            return Err(MoveError::SeveralSources {
                first,
                other: slot,
                a: PrgId::new(tenant, source),
                b: PrgId::new(tenant, owner),
            });
        }
    }
    if source == to.index {
        return Err(MoveError::SameTarget(to.clone()));
    }
    let wanted: BTreeSet<u32> = slots.iter().copied().collect();
    for m in active.iter().filter(|m| m.tenant == tenant && !m.phase.is_finished()) {
        if let Some(slot) = m.slots.iter().find(|s| wanted.contains(s)) {
            return Err(MoveError::AlreadyMoving { slot: *slot, id: m.id });
        }
    }
    Ok(source)
}

/// Tuning of the catch-up and fence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoveLimits {
    /// Fence once a catch-up round carries at most this many bytes.
    pub fence_below_bytes: u64,
    /// Fence after this many rounds even if writes keep coming: the final
    /// delta is then bounded by what one round accumulates.
    pub max_rounds: u32,
    /// Longest the source may stay fenced before the move rolls back.
    pub fence_budget_ms: u64,
}

impl Default for MoveLimits {
    fn default() -> Self {
        Self { fence_below_bytes: 256 << 10, max_rounds: 20, fence_budget_ms: 2_000 }
    }
}

/// What to do after a catch-up round that carried `bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Pull again: writes are still arriving faster than the fence allows.
    Again,
    /// The delta is small (or the rounds are spent): fence now.
    Fence,
}

pub fn after_round(bytes: u64, rounds: u32, limits: &MoveLimits) -> CatchUp {
    if bytes <= limits.fence_below_bytes || rounds >= limits.max_rounds {
        CatchUp::Fence
    } else {
        CatchUp::Again
    }
}

/// Where a failed step leaves the move: before the commit it rolls back,
/// after it the step is retried.
pub fn on_failure(phase: MovePhase) -> MovePhase {
    if phase.is_committed() {
        phase
    } else if phase == MovePhase::RolledBack {
        MovePhase::RolledBack
    } else {
        MovePhase::RollingBack
    }
}

/// Whether a fenced move has overrun its budget at `now_ms` and must roll
/// back instead of committing.
pub fn fence_overrun(m: &SlotMove, now_ms: u64, limits: &MoveLimits) -> bool {
    m.phase == MovePhase::Fenced && m.fenced_ms.is_some_and(|f| now_ms.saturating_sub(f) > limits.fence_budget_ms)
}

/// One step of a move, for the executor to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Propose a slot command on the source PRG.
    Source(SlotCommand),
    /// Propose a slot command on the target PRG.
    Target(SlotCommand),
    /// Copy the slots' rows from the saved cursor to the end.
    CopyRows,
    /// Pull changes round after round until [`after_round`] says fence.
    CatchUp,
    /// Pull the last changes, with the source fenced.
    FinalDelta,
    /// Bump the routing epoch with the slots owned by the target; the
    /// move becomes `Committed`.
    Commit,
    /// Record the next phase.
    Become(MovePhase),
}

impl Action {
    /// The step's name, as logs and fail points spell it: `begin-export`,
    /// `copy-rows`, `become-fenced`, ... Unique within a move.
    pub fn name(&self) -> String {
        match self {
            Action::Source(cmd) | Action::Target(cmd) => cmd.name().to_string(),
            Action::CopyRows => "copy-rows".into(),
            Action::CatchUp => "catch-up".into(),
            Action::FinalDelta => "final-delta".into(),
            Action::Commit => "commit".into(),
            Action::Become(phase) => format!("become-{}", phase.name()),
        }
    }
}

/// The steps that take `m` from its phase to the next one. Every step is
/// idempotent, so a new executor simply starts the phase over.
pub fn plan(m: &SlotMove) -> Vec<Action> {
    let (move_id, slots) = (m.id, m.slots.clone());
    match m.phase {
        MovePhase::Copying => vec![
            Action::Source(SlotCommand::BeginExport { move_id, slots: slots.clone() }),
            Action::Target(SlotCommand::BeginImport { move_id, slots }),
            Action::CopyRows,
            Action::Become(MovePhase::CatchUp),
        ],
        MovePhase::CatchUp => vec![
            Action::CatchUp,
            Action::Source(SlotCommand::Fence { move_id, slots }),
            Action::Become(MovePhase::Fenced),
        ],
        MovePhase::Fenced => vec![Action::FinalDelta, Action::Commit],
        MovePhase::Committed => vec![
            // The source stops serving before the target starts: no read
            // is ever answered by both.
            Action::Source(SlotCommand::Release {
                move_id,
                slots: slots.clone(),
                to: m.to,
                epoch: m.commit_epoch.unwrap_or_default(),
            }),
            Action::Target(SlotCommand::Adopt { move_id, slots }),
            Action::Become(MovePhase::Done),
        ],
        MovePhase::RollingBack => vec![
            Action::Source(SlotCommand::Unfence { move_id, slots: slots.clone() }),
            Action::Target(SlotCommand::DropImport { move_id, slots }),
            Action::Become(MovePhase::RolledBack),
        ],
        MovePhase::Done | MovePhase::RolledBack => Vec::new(),
    }
}

/// Parse a slot list such as `0-63,100,200-201` into sorted, distinct slots.
/// Slot numbers are below [`MAX_SLOTS`], so a range such as
/// `0-4294967295` is refused rather than expanded.
pub fn parse_slots(s: &str) -> Result<Vec<u32>, String> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("invalid slot range '{part}': expected N or N-M");
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().map_err(|_| bad())?, b.trim().parse::<u32>().map_err(|_| bad())?),
            None => {
                let a = part.parse::<u32>().map_err(|_| bad())?;
                (a, a)
            }
        };
        if a > b {
            return Err(format!("invalid slot range '{part}': {a} is above {b}"));
        }
        if b >= MAX_SLOTS {
            return Err(format!("invalid slot range '{part}': slots are numbered below {MAX_SLOTS}"));
        }
        out.extend(a..=b);
    }
    if out.is_empty() {
        return Err("no slots given".into());
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
#[path = "slot_move_tests.rs"]
mod tests;
