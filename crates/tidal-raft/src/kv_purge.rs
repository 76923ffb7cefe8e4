//! Deleting the rows of a slot a PRG has let go of, a piece at a time.
//!
//! ```text
//!   Release / DropImport ──> layer.dropped ──flush──> purging (persisted)
//!        each flush: delete ≤ PURGE_BYTES of purging rows ──> slot leaves purging
//! ```
//!
//! A slot that a move released (or whose import rolled back) leaves its
//! rows behind, up to a whole move's worth. Deleted in one transaction,
//! a hundred MiB holds the node's state writer for a second or more, and
//! every group's flush waits behind it. So the flush that drops a slot
//! adds it to the PRG's *purging* set, written in the same transaction as
//! the flush; each flush from that one on deletes up to [`PURGE_BYTES`]
//! of purging rows, and a group with slots still purging
//! flushes every [`PURGE_PAUSE`](crate::state_machine::PURGE_PAUSE) even
//! when nothing is applied. Meanwhile no one sees those rows: the table's
//! readers step over purging slots ([`Skipping`]), snapshots leave them
//! out, and exact counts subtract them. A slot that takes rows again
//! before its purge ends (moved back) is emptied whole first, in the flush
//! that writes its new rows.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use redb::ReadOnlyTable;

use crate::kv_overlay::{as_ref, slot_of_stored, KeyRange, Layer};

/// Most bytes of purging rows one flush deletes.
pub(crate) const PURGE_BYTES: usize = 4 << 20;

/// Slots whose rows the table still holds, being deleted; nothing reads them.
pub(crate) type Purging = Arc<BTreeSet<u32>>;

type Raw = ReadOnlyTable<&'static [u8], &'static [u8]>;
type RawRange = redb::Range<'static, &'static [u8], &'static [u8]>;

/// A stored row as the table holds it: key and encoded record.
pub(crate) type RawRow = (Vec<u8>, Vec<u8>);

/// The rows of a table within bounds, in stored order, past the rows of
/// the slots in `skip`: a row of one starts the range again after the
/// slot's last possible key, so a purging slot costs one lookup, not a
/// read of its rows.
pub(crate) struct Skipping<'a> {
    table: &'a Raw,
    upper: Bound<Vec<u8>>,
    skip: &'a BTreeSet<u32>,
    rows: Option<RawRange>,
}

impl<'a> Skipping<'a> {
    pub(crate) fn new(
        table: &'a Raw,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        skip: &'a BTreeSet<u32>,
    ) -> Result<Self, redb::StorageError> {
        let rows = Some(table.range::<&[u8]>((lower, upper))?);
        Ok(Self { table, upper: upper.map(<[u8]>::to_vec), skip, rows })
    }
}

impl Iterator for Skipping<'_> {
    type Item = Result<RawRow, redb::StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (k, v) = match self.rows.as_mut()?.next()? {
                Ok(row) => row,
                Err(e) => return Some(Err(e)),
            };
            let key = k.value();
            if self.skip.is_empty() || !self.skip.contains(&slot_of_stored(key)) {
                return Some(Ok((key.to_vec(), v.value().to_vec())));
            }
            // Every key of the slot (or of its element rows) starts with
            // the same 4 bytes: go on from the next such prefix.
            let mut word = [0u8; 4];
            word.copy_from_slice(&key[..4]);
            let next = u32::from_be_bytes(word).checked_add(1).map(u32::to_be_bytes);
            self.rows = match next {
                Some(n) if below(&n, &self.upper) => {
                    match self.table.range::<&[u8]>((Bound::Included(&n[..]), as_ref(&self.upper))) {
                        Ok(r) => Some(r),
                        Err(e) => return Some(Err(e)),
                    }
                }
                _ => None,
            };
        }
    }
}

/// Whether `key` lies below `upper`.
fn below(key: &[u8], upper: &Bound<Vec<u8>>) -> bool {
    match upper {
        Bound::Included(u) => key <= u.as_slice(),
        Bound::Excluded(u) => key < u.as_slice(),
        Bound::Unbounded => true,
    }
}

/// Rows of `table` within `range`, counted one by one (exact counts only).
pub(crate) fn count_in(table: &Raw, range: &KeyRange) -> Result<u64, redb::StorageError> {
    let mut n = 0;
    for row in table.range::<&[u8]>((as_ref(&range.0), as_ref(&range.1)))? {
        row?;
        n += 1;
    }
    Ok(n)
}

/// What one flush does about dropped slots, from the purging set as it
/// stood and the layer being flushed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PurgePlan {
    /// Emptied whole in this flush, before the layer's rows land: the
    /// layer writes rows into them, and those must not be hidden.
    pub(crate) whole: BTreeSet<u32>,
    /// Purging after this flush, unless emptied within its budget.
    pub(crate) purging: BTreeSet<u32>,
}

/// The plan for flushing `layer` over a table whose purging set is `before`.
pub(crate) fn plan(before: &BTreeSet<u32>, layer: &Layer) -> PurgePlan {
    if layer.cleared {
        // The whole table goes: nothing is left to purge, and slots the
        // layer dropped after its clear had nothing below them.
        return PurgePlan { whole: BTreeSet::new(), purging: BTreeSet::new() };
    }
    let mut purging: BTreeSet<u32> = before.union(&layer.dropped).copied().collect();
    let mut whole = BTreeSet::new();
    if !purging.is_empty() {
        // A layer drops a slot's own entries with the slot, so any it
        // holds were written after the drop.
        for key in layer.entries.keys() {
            let slot = slot_of_stored(key);
            if purging.remove(&slot) {
                whole.insert(slot);
            }
        }
    }
    PurgePlan { whole, purging }
}

/// Delete rows of `range` until `budget` bytes are spent; whether the
/// range is empty now.
pub(crate) fn purge_some(
    table: &mut redb::Table<&'static [u8], &'static [u8]>,
    range: &KeyRange,
    budget: &mut usize,
) -> Result<bool, redb::StorageError> {
    let mut rows = table.extract_from_if::<&[u8], _>((as_ref(&range.0), as_ref(&range.1)), |_, _| true)?;
    while *budget > 0 {
        match rows.next() {
            Some(row) => {
                let (k, v) = row?;
                *budget = budget.saturating_sub(k.value().len() + v.value().len());
            }
            None => return Ok(true),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv_overlay::{slot_ranges, stored_key};
    use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};
    use tidal_core::kv::Record;

    const T: TableDefinition<&[u8], &[u8]> = TableDefinition::new("t");

    fn db_with(slots: &[(u32, usize)]) -> Database {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for &(slot, n) in slots {
                for i in 0..n {
                    t.insert(stored_key(slot, format!("k{i:04}").as_bytes()).as_slice(), [7u8; 100].as_slice())
                        .unwrap();
                }
            }
        }
        txn.commit().unwrap();
        db
    }

    #[test]
    fn skipping_steps_over_skipped_slots_within_bounds() {
        let db = db_with(&[(1, 3), (2, 500), (3, 2), (5, 1)]);
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(T).unwrap();
        let skip: BTreeSet<u32> = [2, 5].into();
        let slots = |lower: Bound<&[u8]>, upper: Bound<&[u8]>| -> Vec<u32> {
            Skipping::new(&t, lower, upper, &skip).unwrap().map(|r| slot_of_stored(&r.unwrap().0)).collect()
        };
        assert_eq!(slots(Bound::Unbounded, Bound::Unbounded), vec![1, 1, 1, 3, 3]);
        let three = stored_key(3, b"");
        assert_eq!(slots(Bound::Unbounded, Bound::Excluded(&three)), vec![1, 1, 1]);
        let first_of_three = stored_key(3, b"k0000");
        assert_eq!(slots(Bound::Unbounded, Bound::Included(&first_of_three)), vec![1, 1, 1, 3]);
        let mid = stored_key(2, b"k0100");
        assert_eq!(slots(Bound::Excluded(&mid), Bound::Unbounded), vec![3, 3]);
    }

    #[test]
    fn a_purge_deletes_within_its_budget_and_says_when_the_slot_is_empty() {
        let db = db_with(&[(1, 2), (2, 100), (3, 2)]);
        let range = &slot_ranges(2)[0];
        let txn = db.begin_write().unwrap();
        let mut passes = 0;
        {
            let mut t = txn.open_table(T).unwrap();
            loop {
                passes += 1;
                let mut budget = 1000;
                if purge_some(&mut t, range, &mut budget).unwrap() {
                    break;
                }
                assert_eq!(budget, 0);
            }
            assert_eq!(t.len().unwrap(), 4, "only slot 2 is deleted");
        }
        txn.commit().unwrap();
        // About 110 bytes a row, 1000 bytes a pass: 10 rows each, then an empty look.
        assert_eq!(passes, 11);
    }

    #[test]
    fn a_plan_empties_whole_the_slots_that_take_rows_again() {
        let mut layer = Layer::default();
        layer.drop_slot(4);
        layer.put(&stored_key(7, b"back"), Some(Record::new(b"v")));
        layer.put(&stored_key(9, b"live"), Some(Record::new(b"v")));
        let before: BTreeSet<u32> = [7, 8].into();
        let p = plan(&before, &layer);
        assert_eq!(p.whole, [7].into());
        assert_eq!(p.purging, [4, 8].into());

        let mut cleared = Layer::default();
        cleared.clear();
        cleared.drop_slot(3);
        assert_eq!(plan(&before, &cleared), PurgePlan { whole: BTreeSet::new(), purging: BTreeSet::new() });
    }
}
