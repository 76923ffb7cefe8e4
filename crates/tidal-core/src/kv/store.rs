//! The storage interface the engine runs against.
//!
//! ```text
//!   WriteOp / ReadOp ──► engine::apply / engine::read ──► impl KvStore
//!                                                        ├─ MemStore (tests)
//!                                                        └─ redb table (tidal-raft)
//! ```
//!
//! A store is a plain ordered map from key bytes to [`Record`]s. It knows
//! nothing about expiry: expired records are simply data that the engine
//! treats as absent (lazy expiry), deleting them when a write touches them.

use super::record::Record;

/// A failure of the underlying storage (I/O, corruption). The engine passes
/// it through untouched; it never becomes a Redis reply inside tidal-core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage error: {0}")]
pub struct StoreError(pub String);

/// Byte-ordered key → record storage for one partition group.
pub trait KvStore {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StoreError>;
    fn put(&mut self, key: &[u8], rec: &Record) -> Result<(), StoreError>;
    /// Removes `key`; returns whether it was stored (expired or not).
    fn delete(&mut self, key: &[u8]) -> Result<bool, StoreError>;
    /// Keys in byte order strictly after `after` (`None` = from the start),
    /// at most `limit` of them, with their records, expired ones included.
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, StoreError>;
    /// Deletes everything; returns how many records were stored.
    fn clear(&mut self) -> Result<u64, StoreError>;
    /// Stored records, which may include expired ones.
    fn len(&self) -> Result<u64, StoreError>;
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}
