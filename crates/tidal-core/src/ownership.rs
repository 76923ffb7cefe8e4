//! Which slots a PRG serves: the per-slot ownership its state machine
//! holds and changes only through its own log.
//!
//! ```text
//!            BeginExport            Fence              Release(to, epoch)
//!   Owned ───────────> Owned(exporting) ───> Fenced ──────────────────> Gone
//!     ^                     │  Unfence          │ Unfence (rollback)
//!     └─────────────────────┴───────────────────┘
//!
//!   (absent | Gone) ──BeginImport──> Importing ──Adopt(epoch)──> Owned
//!                                        └──DropImport (rollback)──> absent
//! ```
//!
//! A node's routing table is only a hint; this is the authority. A PRG's
//! leader checks every request against it: a slot that is not served here
//! is answered with a [`Refusal`], which routers retry (`Fenced`) or
//! re-route (`Moved`). Every command is all-or-nothing and idempotent, so
//! a move executor that repeats a step after a crash changes nothing more.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

/// A slot or replica move, as numbered by the control plane.
pub type MoveId = u64;

/// The state of one slot in one PRG. A slot the PRG never held has no
/// state at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlotState {
    /// Served here. `exporting`: a move is copying the slot out, and the
    /// PRG keeps track of the keys that change meanwhile.
    Owned { exporting: Option<MoveId> },
    /// Being copied in by a move; not served until adopted.
    Importing { move_id: MoveId },
    /// The move is taking its final delta: writes are refused, reads are
    /// still served (nothing can change the slot anywhere).
    Fenced { move_id: MoveId },
    /// Handed to the PRG with index `to` at routing epoch `epoch`; its data
    /// is dropped here.
    Gone { to: u32, epoch: u64 },
}

impl SlotState {
    /// Whether requests for the slot are answered here.
    pub fn serves_reads(&self) -> bool {
        matches!(self, SlotState::Owned { .. } | SlotState::Fenced { .. })
    }
}

/// Why a PRG did not serve a request for a slot. Routers never show these
/// to clients: `Moved` makes them refresh their routing and re-route,
/// `Fenced` makes them wait briefly and retry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// Owned elsewhere: by PRG index `to` since `epoch` when known.
    #[error("slot {slot} is not served by this PRG (moved to {to:?} at epoch {epoch})")]
    Moved { slot: u32, to: Option<u32>, epoch: u64 },
    /// In a hand-off: retry after a short pause.
    #[error("slot {slot} is fenced by move {move_id}")]
    Fenced { slot: u32, move_id: MoveId },
}

/// A change of ownership, proposed through the PRG's log by a move.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlotCommand {
    /// Source: start tracking changes to `slots` for the move.
    BeginExport { move_id: MoveId, slots: Vec<u32> },
    /// Source: refuse writes to `slots` until released or unfenced.
    Fence { move_id: MoveId, slots: Vec<u32> },
    /// Source, rolling back: serve `slots` as before the move.
    Unfence { move_id: MoveId, slots: Vec<u32> },
    /// Source, after the epoch bump: the slots belong to PRG `to`; drop them.
    Release { move_id: MoveId, slots: Vec<u32>, to: u32, epoch: u64 },
    /// Target: accept imported rows of `slots` for the move.
    BeginImport { move_id: MoveId, slots: Vec<u32> },
    /// Target, after the epoch bump: serve the imported slots.
    Adopt { move_id: MoveId, slots: Vec<u32> },
    /// Target, rolling back: forget the slots and drop their rows.
    DropImport { move_id: MoveId, slots: Vec<u32> },
}

impl SlotCommand {
    /// The command's name, as logs and fail points spell it.
    pub fn name(&self) -> &'static str {
        match self {
            SlotCommand::BeginExport { .. } => "begin-export",
            SlotCommand::Fence { .. } => "fence",
            SlotCommand::Unfence { .. } => "unfence",
            SlotCommand::Release { .. } => "release",
            SlotCommand::BeginImport { .. } => "begin-import",
            SlotCommand::Adopt { .. } => "adopt",
            SlotCommand::DropImport { .. } => "drop-import",
        }
    }

    /// Whether the command starts a move's part in a PRG.
    pub fn begins(&self) -> bool {
        matches!(self, SlotCommand::BeginExport { .. } | SlotCommand::BeginImport { .. })
    }

    /// Whether the command ends a move's part in a PRG.
    pub fn ends(&self) -> bool {
        matches!(
            self,
            SlotCommand::Unfence { .. }
                | SlotCommand::Release { .. }
                | SlotCommand::Adopt { .. }
                | SlotCommand::DropImport { .. }
        )
    }

    pub fn move_id(&self) -> MoveId {
        match self {
            SlotCommand::BeginExport { move_id, .. }
            | SlotCommand::Fence { move_id, .. }
            | SlotCommand::Unfence { move_id, .. }
            | SlotCommand::Release { move_id, .. }
            | SlotCommand::BeginImport { move_id, .. }
            | SlotCommand::Adopt { move_id, .. }
            | SlotCommand::DropImport { move_id, .. } => *move_id,
        }
    }

    pub fn slots(&self) -> &[u32] {
        match self {
            SlotCommand::BeginExport { slots, .. }
            | SlotCommand::Fence { slots, .. }
            | SlotCommand::Unfence { slots, .. }
            | SlotCommand::Release { slots, .. }
            | SlotCommand::BeginImport { slots, .. }
            | SlotCommand::Adopt { slots, .. }
            | SlotCommand::DropImport { slots, .. } => slots,
        }
    }
}

/// Why a slot command does not apply. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum OwnershipError {
    #[error("slot {slot} is out of range (the tenant has {slots} slots)")]
    OutOfRange { slot: u32, slots: u32 },
    #[error("move {move_id}: slot {slot} is {state}, which {action} cannot change")]
    Conflict { move_id: MoveId, slot: u32, state: String, action: &'static str },
    #[error("move {move_id}: {action} of slot {slot} is stale (move {last} has moved it since, or this move's part is over)")]
    Stale { move_id: MoveId, slot: u32, last: MoveId, action: &'static str },
}

/// What an applied command asks of the data: rows of these slots go away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    pub drop_slots: Vec<u32>,
}

/// The last move whose commands changed a slot here, and whether its part
/// here is over (the slot was unfenced, released, adopted or dropped).
///
/// Moves of one slot follow each other, and move ids only grow, so a
/// command of an older move, or one that would begin a move whose part is
/// over, comes from an executor that no longer drives it (a deposed
/// control-plane leader, or a step retried after the move moved on); it
/// is refused as stale, and a slot can never be left exporting or
/// importing for a move that has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub move_id: MoveId,
    pub ended: bool,
}

/// The ownership of every slot a PRG has held, for a tenant of `slots` slots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    slots: u32,
    states: BTreeMap<u32, SlotState>,
    marks: BTreeMap<u32, Mark>,
}

/// [`Ownership`] as stored before it kept a [`Mark`] per slot (format 1).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OwnershipV1 {
    slots: u32,
    states: BTreeMap<u32, SlotState>,
}

impl From<OwnershipV1> for Ownership {
    /// Slots in the middle of a move are marked with it; settled ones
    /// carry no mark, as at creation.
    fn from(v1: OwnershipV1) -> Self {
        let marks = v1
            .states
            .iter()
            .filter_map(|(slot, s)| match s {
                SlotState::Owned { exporting: Some(m) }
                | SlotState::Fenced { move_id: m }
                | SlotState::Importing { move_id: m } => Some((*slot, Mark { move_id: *m, ended: false })),
                _ => None,
            })
            .collect();
        Ownership { slots: v1.slots, states: v1.states, marks }
    }
}

impl Ownership {
    /// A PRG that owns `owned` (ranges of slots) from its creation.
    pub fn genesis(slots: u32, owned: &[Range<u32>]) -> Self {
        let states = owned
            .iter()
            .flat_map(|r| r.clone())
            .filter(|s| *s < slots)
            .map(|s| (s, SlotState::Owned { exporting: None }))
            .collect();
        Self { slots, states, marks: BTreeMap::new() }
    }

    /// The tenant's slot count.
    pub fn slot_count(&self) -> u32 {
        self.slots
    }

    pub fn state(&self, slot: u32) -> Option<SlotState> {
        self.states.get(&slot).copied()
    }

    /// Every slot with a state, in slot order.
    pub fn states(&self) -> impl Iterator<Item = (u32, SlotState)> + '_ {
        self.states.iter().map(|(s, st)| (*s, *st))
    }

    /// The last move that changed `slot` here, and whether its part here
    /// has ended; `None` for a slot no move has touched.
    pub fn mark(&self, slot: u32) -> Option<Mark> {
        self.marks.get(&slot).copied()
    }

    /// Whether a write to `slot` may apply here.
    pub fn check_write(&self, slot: u32) -> Result<(), Refusal> {
        match self.states.get(&slot) {
            Some(SlotState::Owned { .. }) => Ok(()),
            Some(SlotState::Fenced { move_id }) | Some(SlotState::Importing { move_id }) => {
                Err(Refusal::Fenced { slot, move_id: *move_id })
            }
            Some(SlotState::Gone { to, epoch }) => Err(Refusal::Moved { slot, to: Some(*to), epoch: *epoch }),
            None => Err(Refusal::Moved { slot, to: None, epoch: 0 }),
        }
    }

    /// Whether a read of `slot` may be served here.
    pub fn check_read(&self, slot: u32) -> Result<(), Refusal> {
        match self.states.get(&slot) {
            Some(SlotState::Fenced { .. }) => Ok(()),
            _ => self.check_write(slot),
        }
    }

    /// Whether keyless commands (DBSIZE, KEYS, SCAN, FLUSHDB) see exactly
    /// the served slots with nothing moving: no slot importing, fenced or
    /// exporting.
    pub fn settled(&self) -> bool {
        self.states.values().all(|s| matches!(s, SlotState::Owned { exporting: None } | SlotState::Gone { .. }))
    }

    /// Slots served here, in order.
    pub fn served(&self) -> impl Iterator<Item = u32> + '_ {
        self.states.iter().filter(|(_, s)| s.serves_reads()).map(|(slot, _)| *slot)
    }

    /// Slots exported by `move_id`.
    pub fn exporting(&self, move_id: MoveId) -> Vec<u32> {
        self.states
            .iter()
            .filter(|(_, s)| match s {
                SlotState::Owned { exporting: Some(m) } | SlotState::Fenced { move_id: m } => *m == move_id,
                _ => false,
            })
            .map(|(slot, _)| *slot)
            .collect()
    }

    /// Apply `cmd`: every slot changes, or (with an error) none does.
    pub fn apply(&mut self, cmd: &SlotCommand) -> Result<Effects, OwnershipError> {
        let move_id = cmd.move_id();
        let mut next = Vec::with_capacity(cmd.slots().len());
        for &slot in cmd.slots() {
            if slot >= self.slots {
                return Err(OwnershipError::OutOfRange { slot, slots: self.slots });
            }
            if let Some(last) = self
                .marks
                .get(&slot)
                .filter(|m| m.move_id > move_id || (m.move_id == move_id && m.ended && cmd.begins()))
            {
                return Err(OwnershipError::Stale { move_id, slot, last: last.move_id, action: cmd.name() });
            }
            let cur = self.states.get(&slot).copied();
            let new = transition(cur, cmd).ok_or_else(|| OwnershipError::Conflict {
                move_id,
                slot,
                state: cur.map_or_else(|| "not held".to_string(), |s| format!("{s:?}")),
                action: cmd.name(),
            })?;
            next.push((slot, cur, new));
        }
        let mut effects = Effects::default();
        for (slot, cur, new) in next {
            let drops = match cmd {
                SlotCommand::Release { .. } => matches!(cur, Some(SlotState::Fenced { .. })),
                SlotCommand::DropImport { .. } => matches!(cur, Some(SlotState::Importing { .. })),
                _ => false,
            };
            if drops {
                effects.drop_slots.push(slot);
            }
            match new {
                Some(s) => self.states.insert(slot, s),
                None => self.states.remove(&slot),
            };
            let ended = cmd.ends() || self.marks.get(&slot).is_some_and(|m| m.move_id == move_id && m.ended);
            self.marks.insert(slot, Mark { move_id, ended });
        }
        Ok(effects)
    }
}

/// The state `cmd` leaves a slot in, or `None` (outer) when it cannot
/// apply to `cur`. Repeating a command that already applied is allowed and
/// leaves the slot as it is.
fn transition(cur: Option<SlotState>, cmd: &SlotCommand) -> Option<Option<SlotState>> {
    use SlotState::*;
    let m = cmd.move_id();
    let same = |x: MoveId| x == m;
    let next = match (cmd, cur) {
        (SlotCommand::BeginExport { .. }, Some(Owned { exporting: None })) => Owned { exporting: Some(m) },
        (SlotCommand::BeginExport { .. }, Some(Owned { exporting: Some(x) })) if same(x) => {
            Owned { exporting: Some(m) }
        }
        (SlotCommand::Fence { .. }, Some(Owned { exporting: Some(x) })) if same(x) => Fenced { move_id: m },
        (SlotCommand::Fence { .. }, Some(Fenced { move_id: x })) if same(x) => Fenced { move_id: m },
        (SlotCommand::Unfence { .. }, Some(Owned { exporting: Some(x) })) if same(x) => Owned { exporting: None },
        (SlotCommand::Unfence { .. }, Some(Fenced { move_id: x })) if same(x) => Owned { exporting: None },
        // Nothing of this move is left to undo.
        (SlotCommand::Unfence { .. }, Some(s @ Owned { exporting: None })) => s,
        (SlotCommand::Release { to, epoch, .. }, Some(Fenced { move_id: x })) if same(x) => {
            Gone { to: *to, epoch: *epoch }
        }
        (SlotCommand::Release { to, epoch, .. }, Some(s @ Gone { to: t, epoch: e })) if t == *to && e == *epoch => s,
        (SlotCommand::BeginImport { .. }, None | Some(Gone { .. })) => Importing { move_id: m },
        (SlotCommand::BeginImport { .. }, Some(Importing { move_id: x })) if same(x) => Importing { move_id: m },
        (SlotCommand::Adopt { .. }, Some(Importing { move_id: x })) if same(x) => Owned { exporting: None },
        (SlotCommand::Adopt { .. }, Some(s @ Owned { exporting: None })) => s,
        (SlotCommand::DropImport { .. }, Some(Importing { move_id: x })) if same(x) => return Some(None),
        // Already dropped (or never begun): nothing to undo.
        (SlotCommand::DropImport { .. }, None) => return Some(None),
        (SlotCommand::DropImport { .. }, Some(s @ Gone { .. })) => s,
        _ => return None,
    };
    Some(Some(next))
}

#[cfg(test)]
#[path = "ownership_tests.rs"]
mod tests;
