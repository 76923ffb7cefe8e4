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
//!
//! Next to it, a store keeps the element rows of collections: under a
//! collection's key, an ordered map from sub-keys (a hash field, a set
//! member, a list position, ...) to bytes. The key's [`Record`] is the
//! collection's header; the store does not tie the two together, the
//! engine keeps them consistent. Element rows are not keys: `len`, `scan`
//! and `get` never see them, and `clear` deletes them too.

use std::ops::Bound;

use super::record::Record;

/// Element rows of one collection: (sub-key, bytes) pairs.
pub type ElementRows = Vec<(Vec<u8>, Vec<u8>)>;

/// The bytes a store orders a collection's element rows by: the key's
/// length (u32, big-endian), the key, then the sub-key. All rows of one
/// key are one contiguous range, in sub-key order.
pub fn element_key(key: &[u8], sub: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len() + sub.len());
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(sub);
    out
}

/// Bounds on what follows `prefix` as bounds on whole byte strings: a
/// given bound gets the prefix, and an open end stops at the prefix's
/// range (its first string, or past its last). With the prefix
/// `element_key(key, b"")`, bounds on a key's sub-keys.
pub fn prefixed_bounds(prefix: &[u8], lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let with = |s: &[u8]| [prefix, s].concat();
    let lower = match lower {
        Bound::Included(s) => Bound::Included(with(s)),
        Bound::Excluded(s) => Bound::Excluded(with(s)),
        Bound::Unbounded => Bound::Included(prefix.to_vec()),
    };
    let upper = match upper {
        Bound::Included(s) => Bound::Included(with(s)),
        Bound::Excluded(s) => Bound::Excluded(with(s)),
        Bound::Unbounded => prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded),
    };
    (lower, upper)
}

/// The smallest byte string greater than every string that starts with
/// `prefix`; `None` when there is none (all 0xff).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A bound on owned bytes, borrowed.
pub fn bound_slice(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

/// Whether `sub` lies within `lower..upper`.
pub fn within(sub: &[u8], lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    std::ops::RangeBounds::<[u8]>::contains(&(lower, upper), sub)
}

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

    /// Whether `key` may hold a collection with element rows: false only
    /// when no element row can be stored under it, so a write that
    /// replaces the key need not look at what it held (a collection's
    /// rows would have to go with it).
    fn may_hold_collections(&self, _key: &[u8]) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// How many rows (records and element rows) were stored or deleted
    /// through this store so far, for the engine to tell whether an op
    /// changed anything. A store that does not count answers 0.
    fn writes(&self) -> u64 {
        0
    }

    /// Takes the count of rows written back to `mark` (an earlier
    /// [`KvStore::writes`]): what was written since is no change of the
    /// op's own (a key it found expired, deleted first).
    fn discount_writes(&mut self, _mark: u64) {}

    /// Adds `n` to the changes applied here: Redis's `dirty` count, which
    /// INFO reports as `rdb_changes_since_last_save`.
    fn count_changes(&mut self, _n: u64) {}

    /// The changes counted so far.
    fn changes(&self) -> u64 {
        0
    }

    /// The element row `sub` of the collection `key`.
    fn elem_get(&self, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn elem_put(&mut self, key: &[u8], sub: &[u8], value: &[u8]) -> Result<(), StoreError>;
    fn elem_delete(&mut self, key: &[u8], sub: &[u8]) -> Result<(), StoreError>;
    /// Up to `limit` element rows of `key` with sub-keys within the bounds,
    /// in sub-key order.
    fn elem_range(
        &self,
        key: &[u8],
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<ElementRows, StoreError>;
}
