//! What a group's entries mean. The Raft plumbing (logs, snapshots,
//! membership) is the same for every group; a [`Machine`] supplies the
//! meaning: the key-value machine for PRGs, the control-plane machine for
//! `_cp`.

use redb::{ReadTransaction, WriteTransaction};

use crate::snapshot::SnapshotPieces;
use crate::storage::Db;

/// Writes what a machine set aside with [`Machine::freeze`], inside a
/// transaction of the state file's writer.
pub type FlushJob = Box<dyn FnOnce(&WriteTransaction) -> Result<(), String> + Send>;

/// A deterministic state machine whose data lives in the node's state file.
///
/// Applying works in memory: a machine keeps what it applied since its
/// last flush and answers reads from it first. The group
/// ([`crate::state_machine`]) decides when to flush: it calls
/// [`freeze`](Machine::freeze) and writes the returned job in the same
/// transaction as the group's applied index, so the file's data and applied
/// index always change together. Entries applied after the last flush are
/// applied again from the durable log after a crash.
pub trait Machine: Send + Sync + 'static {
    /// Apply the committed proposal at log `index` and return its encoded
    /// reply; `state` is the state file, for data the machine does not hold
    /// in memory. A proposal the machine understands but refuses must
    /// produce an error *reply*, not `Err`: `Err` means the group cannot go
    /// on (the storage failed, or the entry cannot be read at all).
    fn apply(&self, state: &Db, index: u64, now_ms: u64, body: &[u8]) -> Result<Vec<u8>, String>;

    /// Rough bytes of memory held by what was applied since the last
    /// [`freeze`](Machine::freeze).
    fn unflushed_bytes(&self) -> usize;

    /// Set aside everything applied since the last freeze and return the
    /// job that writes it into the state file. What is set aside stays
    /// readable until [`flushed`](Machine::flushed). The group never
    /// freezes again before that.
    fn freeze(&self) -> FlushJob;

    /// The job of the last freeze has committed (`ok`), or its transaction
    /// failed (the set-aside data then stays in memory).
    fn flushed(&self, ok: bool);

    /// Whether a flush would do work even with nothing new applied (the
    /// key-value machine deletes a dropped slot's rows a piece per flush).
    /// The group asks after each batch it applies and each flush, and
    /// while the answer is yes it flushes at a steady pace.
    fn backlog(&self) -> bool {
        false
    }

    /// A reader of everything the state file holds for this machine as
    /// `txn` sees it: the payload of a snapshot, in pieces
    /// ([`crate::snapshot`]).
    fn export(&self, txn: &ReadTransaction) -> Result<Box<dyn SnapshotPieces>, String>;

    /// Read one piece of an arriving snapshot and return the job that
    /// stages it next to the live data; `first` starts a new snapshot,
    /// dropping whatever an unfinished earlier transfer staged. A piece the
    /// machine cannot read is refused here, before anything is written:
    /// the job shares its transaction with other groups' work, so it may
    /// fail only when the storage does.
    fn stage(&self, first: bool, piece: &[u8]) -> Result<FlushJob, String>;

    /// Most bytes an arriving snapshot of this machine may carry; a
    /// transfer that goes past it is refused. `None` for a machine whose
    /// pieces go to the state file as they arrive, so that memory holds
    /// only the pieces being staged whatever the snapshot's size; a
    /// machine that gathers its snapshot in memory must name a bound.
    fn max_snapshot_bytes(&self) -> Option<u64>;

    /// Whether what is staged is a whole snapshot this machine can install.
    fn check_staged(&self, state: &Db) -> Result<(), String>;

    /// The job that drops whatever is staged (nothing, once an install
    /// has taken it).
    fn unstage(&self) -> FlushJob;

    /// Replace everything the state file holds for this machine with the
    /// staged snapshot, which [`check_staged`](Machine::check_staged) has
    /// accepted.
    fn import_staged(&self, txn: &WriteTransaction) -> Result<(), String>;

    /// Forget what is held in memory and read the state file again (after
    /// an `import` has committed).
    fn reload(&self, state: &Db) -> Result<(), String>;

    /// Delete everything the state file holds for this machine, staged
    /// snapshots included: its replica is leaving this node for good.
    fn purge(&self, _txn: &WriteTransaction) -> Result<(), String> {
        Ok(())
    }

    /// [`purge`](Machine::purge) a piece at a time: delete about `budget`
    /// bytes of what the state file holds for this machine, and say
    /// whether everything is gone (the last piece purges). A machine whose
    /// state is small purges it all at once.
    fn purge_some(&self, txn: &WriteTransaction, _budget: usize) -> Result<bool, String> {
        self.purge(txn).map(|()| true)
    }
}
