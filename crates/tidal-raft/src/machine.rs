//! What a group's entries mean. The Raft plumbing (logs, snapshots,
//! membership) is the same for every group; a [`Machine`] supplies the
//! meaning: the key-value machine for PRGs, the control-plane machine for
//! `_cp`.

use redb::{ReadTransaction, WriteTransaction};

/// A deterministic state machine stored in the node's database.
///
/// Every method runs inside a transaction owned by the storage writer (or a
/// read transaction), so the machine's data and the group's applied index
/// always change together.
pub trait Machine: Send + Sync + 'static {
    /// Apply one committed proposal and return its encoded reply. An invalid
    /// proposal must produce an error *reply*, not `Err`: `Err` means the
    /// storage failed and the node cannot continue with this group.
    fn apply(&self, txn: &WriteTransaction, now_ms: u64, body: &[u8]) -> Result<Vec<u8>, String>;

    /// Everything the machine holds, as one snapshot payload.
    fn export(&self, txn: &ReadTransaction) -> Result<Vec<u8>, String>;

    /// Replace everything the machine holds with a snapshot payload.
    fn import(&self, txn: &WriteTransaction, data: &[u8]) -> Result<(), String>;

    /// Called after the transaction of an `apply` or `import` has committed,
    /// for machines that keep an in-memory view.
    fn committed(&self) {}
}
