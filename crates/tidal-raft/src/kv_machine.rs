//! The key-value machine of a PRG: Redis string semantics
//! ([`tidal_core::kv`]) over one redb table per PRG (`kvs/<tenant>:<index>`),
//! with the writes not yet flushed to the table held in memory
//! ([`crate::kv_overlay`]), and the ownership of every slot the PRG has held
//! ([`tidal_core::ownership`]).
//!
//! ```text
//!  entry ─> Writes ──ownership ok?──> engine::apply ─> layers ─flush─> kvs/<prg>
//!       │                └─ no: Refusal (Moved / Fenced), nothing applied
//!       ├─> Slots (BeginExport, Fence, Release, BeginImport, Adopt, ...)
//!       └─> Rows (a move's copy of a slot, into an importing slot)
//! ```
//!
//! Rows are stored under `slot ‖ key`, so one slot is one contiguous range:
//! a move reads it out in chunks, and dropping it touches nothing else.
//! Writes apply, in order, at the proposing leader's clock reading, so
//! TTLs resolve identically on every replica. Reads run against the layers
//! and a read transaction after the router has confirmed leadership.
//!
//! While a slot is being exported, every replica notes which of its keys
//! change and at which log index, so whichever replica leads can answer a
//! move's "what changed after index i" ([`KvMachine::delta`]). The notes
//! live in memory: a replica that restarts (or installs a snapshot)
//! answers only for changes after the point it resumed from, and the move
//! starts its copy over.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, Range};
use std::sync::{Arc, Mutex, RwLock};

use redb::{
    ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, TableError, TableHandle, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use tidal_core::kv::{
    self as engine, notify, prefixed_bounds, ElementRows, GroupWrite, KvStore, ReadOp, Record, Reply,
    StoreError as KvError, StreamWrite, WriteOp,
};
use tidal_core::ownership::{MoveId, Ownership, OwnershipV1, Refusal, SlotCommand, SlotState};
use tidal_core::slot::slot_of;

use crate::kv_deadlines::Deadlines;
use crate::kv_entry::{decode_entry, ControlOutcome, KvEntry, Outcome, Row};
use crate::kv_overlay::{
    self as overlay, as_ref, element_slot_bounds, slot_bounds, slot_of_stored, slot_ranges, stored_element, stored_key,
    Base, BaseIter, Layer,
};
use crate::kv_purge::{self as purge, Purging, Skipping, PURGE_BYTES};
use crate::log_store::put_meta;
use crate::machine::{FlushJob, Machine};
use crate::notices::Notices;
use crate::snapshot::SnapshotPieces;
use crate::storage::{Db, Storage, StoreError, META};
use crate::types::{decode, encode, encode_versioned, split_version, LogId};
use crate::waiters::Waiters;

pub use crate::kv_entry::encode_batch;

/// Format of the persisted spec record.
const META_VERSION: u8 = 1;
/// Format of the persisted ownership record and of snapshots: 2 since
/// ownership keeps the last move of each slot; 1 is still read.
const OWNERSHIP_VERSION: u8 = 2;

/// What a PRG's machine is created from, fixed for the PRG's life: the
/// tenant's slot count and the slots it owned at creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvSpec {
    pub slots: u32,
    pub genesis: Vec<Range<u32>>,
}

impl KvSpec {
    /// A PRG that owns every slot of a `slots`-slot tenant.
    pub fn whole(slots: u32) -> Self {
        Self { slots, genesis: std::iter::once(0..slots).collect() }
    }
}

/// Writes applied but not yet in the table: the layer new writes go to,
/// and the one being written to the table, if any.
#[derive(Default)]
struct Layers {
    active: Layer,
    frozen: Option<Arc<Layer>>,
}

impl Layers {
    fn stack(&self) -> Vec<&Layer> {
        std::iter::once(&self.active).chain(self.frozen.as_deref()).collect()
    }
}

/// Keys of exported slots that changed, and at which log index.
struct Export {
    /// Changes after this index are all known here.
    since: u64,
    changed: BTreeMap<Vec<u8>, u64>,
}

/// Everything applying changes, under one lock.
struct Inner {
    layers: Layers,
    ownership: Ownership,
    /// Changed since the last freeze.
    ownership_dirty: bool,
    /// Slots let go of whose rows the table still holds ([`crate::kv_purge`]).
    purging: Purging,
    exports: BTreeMap<MoveId, Export>,
    /// Index of the last applied entry.
    last_index: u64,
    /// Slots under which this replica may store element rows: a write
    /// that replaces a key of another slot need not read what the key
    /// held. A slot joins when an element row is stored in it, and leaves
    /// when its rows are dropped (FLUSHDB, the slot let go); rows deleted
    /// one by one leave it in until the next start or snapshot.
    element_slots: BTreeSet<u32>,
    /// The deadlines of the keys stored with a TTL, for the reaper (a
    /// lock of its own: the reaper's walks note keys under a read lock).
    deadlines: Mutex<Deadlines>,
    /// Changes applied since this replica started (Redis's `dirty` count,
    /// for INFO; see `tidal_core::kv` `changes`).
    changes: u64,
}

impl Inner {
    fn deadlines(&mut self) -> &mut Deadlines {
        self.deadlines.get_mut().expect("deadlines lock")
    }

    /// The deadlines, through their lock (for a holder of a read lock).
    fn locked_deadlines(&self) -> std::sync::MutexGuard<'_, Deadlines> {
        self.deadlines.lock().expect("deadlines lock")
    }
}

pub struct KvMachine {
    group: String,
    spec: KvSpec,
    table: String,
    /// Where an arriving snapshot's rows are staged (`kvs-in/<tenant>:<index>`).
    staging: String,
    inner: RwLock<Inner>,
    /// The purging set the running flush leaves, for [`Machine::flushed`].
    purged: Arc<Mutex<Option<BTreeSet<u32>>>>,
    /// Clients blocked on keys here, woken as writes to them apply.
    waiters: Waiters,
    /// Where the keyspace events of applied writes go.
    notices: Notices,
}

/// The most noted keys of slots not served yet (being copied in, or
/// fenced) that one look at the due keys passes over.
const WAITING_PER_LOOK: usize = 4096;

/// What [`KvMachine::expiry_sample`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExpirySample {
    /// Keys looked at.
    pub examined: usize,
    /// How many of them carry a TTL.
    pub with_ttl: usize,
    /// The expired ones, by slot.
    pub expired: BTreeMap<u32, Vec<Vec<u8>>>,
    /// The key to look after next; `None` once the end was reached.
    pub next: Option<Vec<u8>>,
}

/// Why a move's pull of changes cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// This replica has not seen every change since `after`: copy again.
    #[error("changes after index {after} are not known here (known after {since}); the copy must start over")]
    Lost { after: u64, since: u64 },
    #[error("move {0} exports nothing from this PRG")]
    NotExporting(MoveId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Def<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;

fn kv_err(e: impl std::fmt::Display) -> KvError {
    KvError(e.to_string())
}

fn get_in(t: &impl ReadableTable<&'static [u8], &'static [u8]>, key: &[u8]) -> Result<Option<Record>, KvError> {
    match t.get(key).map_err(kv_err)? {
        Some(v) => Record::decode(v.value()).map(Some).map_err(kv_err),
        None => Ok(None),
    }
}

type ReadOnly = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// A PRG's tables in a read transaction: its keys, and its collections'
/// element rows (see [`overlay::ELEMENTS`]); `None` when nothing was
/// written to one yet. Together they read as one ordered map.
struct Table {
    keys: Option<ReadOnly>,
    elements: Option<ReadOnly>,
    /// Slots whose rows are being purged: not seen.
    purging: Purging,
}

fn rows_of<'a>(
    t: &'a Option<ReadOnly>,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    purging: &'a BTreeSet<u32>,
) -> Result<BaseIter<'a>, KvError> {
    let Some(t) = t else {
        return Ok(Box::new(std::iter::empty()));
    };
    let rows = Skipping::new(t, lower, upper, purging).map_err(kv_err)?;
    Ok(Box::new(rows.map(|row| {
        let (k, v) = row.map_err(kv_err)?;
        Ok((k, Record::decode(&v).map_err(kv_err)?))
    })))
}

impl Table {
    /// Element rows stored in the table (those of unflushed layers aside,
    /// purging ones included).
    fn element_rows(&self) -> Result<u64, KvError> {
        self.elements.as_ref().map_or(Ok(0), |t| t.len().map_err(kv_err))
    }

    /// Keys stored, purging ones included: redb's count, no row read.
    fn stored_keys(&self) -> Result<u64, KvError> {
        self.keys.as_ref().map_or(Ok(0), |t| t.len().map_err(kv_err))
    }
}

impl Base for Table {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
        if !self.purging.is_empty() && self.purging.contains(&slot_of_stored(key)) {
            return Ok(None);
        }
        let t = if overlay::is_element(key) { &self.elements } else { &self.keys };
        t.as_ref().map_or(Ok(None), |t| get_in(t, key))
    }
    fn iter_range<'a>(&'a self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<BaseIter<'a>, KvError> {
        // Split the range where element rows begin: keys below, rows above.
        let split = overlay::first_element();
        let split = &split[..];
        let starts_below = match lower {
            Bound::Included(k) | Bound::Excluded(k) => k < split,
            Bound::Unbounded => true,
        };
        let ends_above = match upper {
            Bound::Included(k) => k >= split,
            Bound::Excluded(k) => k > split,
            Bound::Unbounded => true,
        };
        let keys: BaseIter<'a> = if starts_below {
            let upper = if ends_above { Bound::Excluded(split) } else { upper };
            rows_of(&self.keys, lower, upper, &self.purging)?
        } else {
            Box::new(std::iter::empty())
        };
        let elements: BaseIter<'a> = if ends_above {
            let lower = if starts_below { Bound::Included(split) } else { lower };
            rows_of(&self.elements, lower, upper, &self.purging)?
        } else {
            Box::new(std::iter::empty())
        };
        // The slices are owned by the caller only for this call: the
        // iterators borrow the tables, not the bounds.
        Ok(Box::new(keys.chain(elements)))
    }
    fn len(&self) -> Result<u64, KvError> {
        let mut n = self.stored_keys()?;
        if let Some(t) = &self.keys {
            for slot in self.purging.iter() {
                n = n.saturating_sub(purge::count_in(t, &slot_bounds(*slot)).map_err(kv_err)?);
            }
        }
        Ok(n)
    }
    fn approx_len(&self) -> Result<u64, KvError> {
        self.stored_keys()
    }
    fn slot_len(&self, slot: u32) -> Result<u64, KvError> {
        match &self.keys {
            Some(t) if !self.purging.contains(&slot) => purge::count_in(t, &slot_bounds(slot)).map_err(kv_err),
            _ => Ok(0),
        }
    }
}

/// The table, opened on first use: most writes never need it.
struct LazyTable<'a> {
    table: &'a str,
    state: &'a Db,
    purging: Purging,
    opened: OnceCell<Result<Table, KvError>>,
}

impl Base for LazyTable<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
        self.open()?.get(key)
    }
    fn iter_range<'b>(&'b self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<BaseIter<'b>, KvError> {
        self.open()?.iter_range(lower, upper)
    }
    fn len(&self) -> Result<u64, KvError> {
        self.open()?.len()
    }
    fn approx_len(&self) -> Result<u64, KvError> {
        self.open()?.approx_len()
    }
    fn slot_len(&self, slot: u32) -> Result<u64, KvError> {
        self.open()?.slot_len(slot)
    }
}

impl LazyTable<'_> {
    fn open(&self) -> Result<&Table, KvError> {
        self.opened
            .get_or_init(|| {
                let txn = self.state.read().map_err(kv_err)?;
                open_table(&txn, self.table, self.purging.clone()).map_err(KvError)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The table `name` and its element rows' table, past the `purging` slots.
fn open_table(txn: &ReadTransaction, name: &str, purging: Purging) -> Result<Table, String> {
    Ok(Table { keys: open_one(txn, name)?, elements: open_one(txn, &elements_table(name))?, purging })
}

/// The name of the table that holds the element rows of the table `name`.
fn elements_table(name: &str) -> String {
    format!("{name}#elements")
}

/// The slots under which the table `name` stores element rows: one probe
/// per such slot.
fn slots_with_elements(state: &Db, name: &str) -> Result<BTreeSet<u32>, StoreError> {
    let txn = state.read()?;
    let mut slots = BTreeSet::new();
    let Some(t) = open_one(&txn, &elements_table(name)).map_err(StoreError::Db)? else { return Ok(slots) };
    let mut from = overlay::first_element().to_vec();
    loop {
        let db = |e: redb::StorageError| StoreError::Db(e.to_string());
        let Some(row) = t.range::<&[u8]>(from.as_slice()..).map_err(db)?.next() else { return Ok(slots) };
        let slot = slot_of_stored(row.map_err(db)?.0.value());
        slots.insert(slot);
        match (overlay::ELEMENTS | slot).checked_add(1) {
            Some(next) => from = next.to_be_bytes().to_vec(),
            None => return Ok(slots),
        }
    }
}

fn open_one(txn: &ReadTransaction, name: &str) -> Result<Option<ReadOnly>, String> {
    match txn.open_table(Def::new(name)) {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The keyspace of the slots served here, through the layers over the
/// table, in the user's keys: what the engine sees.
struct View<'a, B: Base> {
    stack: Vec<&'a Layer>,
    base: B,
    ownership: &'a Ownership,
    /// Slots a SCAN page is confined to, all served here.
    scan_slots: Option<Range<u32>>,
}

impl<B: Base> View<'_, B> {
    fn stored(&self, key: &[u8]) -> Vec<u8> {
        stored_key(self.slot(key), key)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
        overlay::get(&self.stack, &self.base, &self.stored(key))
    }

    fn slot(&self, key: &[u8]) -> u32 {
        slot_of(key, self.ownership.slot_count())
    }

    fn elem_get(&self, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let stored = stored_element(self.slot(key), key, sub);
        Ok(overlay::get(&self.stack, &self.base, &stored)?.map(|r| r.value))
    }

    fn elem_range(
        &self,
        key: &[u8],
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<ElementRows, KvError> {
        let prefix = stored_element(self.slot(key), key, b"");
        let (lo, hi) = prefixed_bounds(&prefix, lower, upper);
        let rows = overlay::scan_range(&self.stack, &self.base, as_ref(&lo), as_ref(&hi), limit)?;
        Ok(rows.into_iter().map(|(k, r)| (k[prefix.len()..].to_vec(), r.value)).collect())
    }

    /// Records of served slots after `after` (a user key), in stored order.
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, KvError> {
        let after = after.map(|a| self.stored(a));
        if let Some(slots) = self.scan_slots.clone().filter(|r| !r.is_empty()) {
            let first = slot_bounds(slots.start).0;
            let lower = match &after {
                Some(a) => Bound::Excluded(a.as_slice()),
                None => as_ref(&first),
            };
            let upper = slot_bounds(slots.end - 1).1;
            let rows = overlay::scan_range(&self.stack, &self.base, lower, as_ref(&upper), limit)?;
            return Ok(rows.into_iter().map(|(k, r)| (k[4..].to_vec(), r)).collect());
        }
        let importing = self.ownership.states().any(|(_, s)| matches!(s, SlotState::Importing { .. }));
        let rows = if !importing {
            // Only served slots hold rows.
            overlay::scan(&self.stack, &self.base, after.as_deref(), limit)?
        } else {
            let first = after.as_deref().map_or(0, slot_of_stored);
            let mut out = Vec::new();
            for slot in self.ownership.served().filter(|s| *s >= first) {
                let (lo, hi) = slot_bounds(slot);
                let lower = match &after {
                    Some(a) if slot_of_stored(a) == slot => Bound::Excluded(a.as_slice()),
                    _ => as_ref(&lo),
                };
                out.extend(overlay::scan_range(&self.stack, &self.base, lower, as_ref(&hi), limit - out.len())?);
                if out.len() >= limit {
                    break;
                }
            }
            out
        };
        Ok(rows.into_iter().map(|(k, r)| (k[4..].to_vec(), r)).collect())
    }

    fn len(&self) -> Result<u64, KvError> {
        let mut n = overlay::len(&self.stack, &self.base)?;
        for (slot, st) in self.ownership.states() {
            if matches!(st, SlotState::Importing { .. }) {
                n = n.saturating_sub(overlay::slot_len(&self.stack, &self.base, slot)?);
            }
        }
        Ok(n)
    }
}

/// Where a [`WriteView`]'s writes go.
enum Target<'a> {
    /// The active layer: an entry applying.
    Applied(&'a mut Inner),
    /// A script's own layer over the applied state, seen by the script's
    /// later commands and by nothing else ([`ScriptRun`]).
    Script { inner: &'a Inner, layer: &'a mut Layer },
}

/// The view writes apply through: changes go to the active layer (and
/// changes to exported slots are noted for the moves that export them),
/// or to a running script's layer.
struct WriteView<'a> {
    target: Target<'a>,
    base: LazyTable<'a>,
    /// Rows stored or deleted through this view.
    writes: u64,
}

impl WriteView<'_> {
    fn inner(&self) -> &Inner {
        match &self.target {
            Target::Applied(inner) => inner,
            Target::Script { inner, .. } => inner,
        }
    }

    fn view(&self) -> View<'_, &LazyTable<'_>> {
        let stack = match &self.target {
            Target::Applied(inner) => inner.layers.stack(),
            Target::Script { inner, layer } => std::iter::once(&**layer).chain(inner.layers.stack()).collect(),
        };
        View { stack, base: &self.base, ownership: &self.inner().ownership, scan_slots: None }
    }

    fn set(&mut self, key: &[u8], rec: Option<Record>) {
        // Every record stored carries the index of the entry that wrote it
        // (a script's writes are proposed as the next one at the soonest).
        let index = match &self.target {
            Target::Applied(inner) => inner.last_index,
            Target::Script { inner, .. } => inner.last_index + 1,
        };
        let rec = rec.map(|r| r.stamped(index));
        if let Target::Applied(inner) = &mut self.target {
            inner.deadlines().note(key, rec.as_ref().and_then(|r| r.expire_at_ms));
        }
        let slot = slot_of(key, self.inner().ownership.slot_count());
        self.set_stored(slot, stored_key(slot, key), rec);
    }

    /// An element row: its bytes as an unversioned record (the header's
    /// version is the collection's).
    fn set_element(&mut self, key: &[u8], sub: &[u8], value: Option<&[u8]>) {
        let slot = slot_of(key, self.inner().ownership.slot_count());
        self.set_stored(slot, stored_element(slot, key, sub), value.map(Record::new));
    }

    fn set_stored(&mut self, slot: u32, stored: Vec<u8>, rec: Option<Record>) {
        self.writes += 1;
        let inner = match &mut self.target {
            Target::Applied(inner) => inner,
            Target::Script { layer, .. } => return layer.put(&stored, rec),
        };
        if rec.is_some() && overlay::is_element(&stored) {
            inner.element_slots.insert(slot);
        }
        if let Some(SlotState::Owned { exporting: Some(m) }) = inner.ownership.state(slot) {
            if let Some(e) = inner.exports.get_mut(&m) {
                e.changed.insert(stored.clone(), inner.last_index);
            }
        }
        inner.layers.active.put(&stored, rec);
    }
}

impl<B: Base> Base for &B {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
        (*self).get(key)
    }
    fn iter_range<'a>(&'a self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<BaseIter<'a>, KvError> {
        (*self).iter_range(lower, upper)
    }
    fn len(&self) -> Result<u64, KvError> {
        (*self).len()
    }
    fn approx_len(&self) -> Result<u64, KvError> {
        (*self).approx_len()
    }
    fn slot_len(&self, slot: u32) -> Result<u64, KvError> {
        (*self).slot_len(slot)
    }
}

impl KvStore for WriteView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
        self.view().get(key)
    }
    fn put(&mut self, key: &[u8], rec: &Record) -> Result<(), KvError> {
        self.set(key, Some(rec.clone()));
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> Result<bool, KvError> {
        let existed = self.get(key)?.is_some();
        self.set(key, None);
        Ok(existed)
    }
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, KvError> {
        self.view().scan(after, limit)
    }
    fn clear(&mut self) -> Result<u64, KvError> {
        // Only applied when the ownership is settled: every row is served.
        let n = self.len()?;
        self.writes += 1;
        match &mut self.target {
            Target::Applied(inner) => {
                inner.layers.active.clear();
                inner.deadlines().clear();
                inner.element_slots.clear();
            }
            Target::Script { .. } => return Err(KvError("a script cannot flush the keyspace".into())),
        }
        Ok(n)
    }
    fn len(&self) -> Result<u64, KvError> {
        self.view().len()
    }
    fn may_hold_collections(&self, key: &[u8]) -> Result<bool, KvError> {
        let slot = slot_of(key, self.inner().ownership.slot_count());
        Ok(self.inner().element_slots.contains(&slot)
            || match &self.target {
                // Rows a running script stored are in its own layer only.
                Target::Script { layer, .. } => layer.entries.range(element_slot_bounds(slot)).next().is_some(),
                Target::Applied(_) => false,
            })
    }
    fn writes(&self) -> u64 {
        self.writes
    }
    fn discount_writes(&mut self, mark: u64) {
        self.writes = mark.min(self.writes);
    }
    fn count_changes(&mut self, n: u64) {
        // A script's trial run counts nothing: its writes count when the
        // entry that carries them applies.
        if let Target::Applied(inner) = &mut self.target {
            inner.changes += n;
        }
    }
    fn elem_get(&self, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.view().elem_get(key, sub)
    }
    fn elem_put(&mut self, key: &[u8], sub: &[u8], value: &[u8]) -> Result<(), KvError> {
        self.set_element(key, sub, Some(value));
        Ok(())
    }
    fn elem_delete(&mut self, key: &[u8], sub: &[u8]) -> Result<(), KvError> {
        self.set_element(key, sub, None);
        Ok(())
    }
    fn elem_range(
        &self,
        key: &[u8],
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<ElementRows, KvError> {
        self.view().elem_range(key, lower, upper, limit)
    }
}

fn read_only() -> KvError {
    KvError("write on a read-only view".into())
}

impl<B: Base> KvStore for View<'_, B> {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
        View::get(self, key)
    }
    fn put(&mut self, _: &[u8], _: &Record) -> Result<(), KvError> {
        Err(read_only())
    }
    fn delete(&mut self, _: &[u8]) -> Result<bool, KvError> {
        Err(read_only())
    }
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, KvError> {
        View::scan(self, after, limit)
    }
    fn clear(&mut self) -> Result<u64, KvError> {
        Err(read_only())
    }
    fn len(&self) -> Result<u64, KvError> {
        View::len(self)
    }
    fn elem_get(&self, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        View::elem_get(self, key, sub)
    }
    fn elem_put(&mut self, _: &[u8], _: &[u8], _: &[u8]) -> Result<(), KvError> {
        Err(read_only())
    }
    fn elem_delete(&mut self, _: &[u8], _: &[u8]) -> Result<(), KvError> {
        Err(read_only())
    }
    fn elem_range(
        &self,
        key: &[u8],
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<ElementRows, KvError> {
        View::elem_range(self, key, lower, upper, limit)
    }
}

/// Whether `op`, answered `reply`, is a blocked XREADGROUP's look that
/// found nothing new: it wakes no one (blocked readers would otherwise
/// wake each other with their looks for ever).
fn changes_nothing(op: &WriteOp, reply: &Reply) -> bool {
    matches!(op, WriteOp::Stream { op: StreamWrite::Group { op: GroupWrite::Read { .. }, .. }, .. })
        && matches!(reply, Reply::NilArray)
}

/// The first slot a write or read may not touch here, with the reason.
fn refusal(ownership: &Ownership, keys: &[&[u8]], write: bool) -> Option<Refusal> {
    keys.iter().find_map(|k| {
        let slot = slot_of(k, ownership.slot_count());
        if write {
            ownership.check_write(slot).err()
        } else {
            ownership.check_read(slot).err()
        }
    })
}

/// Keyless writes (FLUSHDB) wait while any slot is moving.
fn unsettled(ownership: &Ownership) -> Option<Refusal> {
    if ownership.settled() {
        return None;
    }
    ownership.states().find_map(|(slot, s)| match s {
        SlotState::Owned { exporting: Some(move_id) }
        | SlotState::Fenced { move_id }
        | SlotState::Importing { move_id } => Some(Refusal::Fenced { slot, move_id }),
        _ => None,
    })
}

/// The machine's records in the state file's metadata table.
const OWNERSHIP: &str = "ownership";
const SPEC: &str = "spec";
/// The slots being purged ([`crate::kv_purge`]); absent when none is.
const PURGING: &str = "purging";

/// Where an arriving snapshot's ownership is staged.
const OWNERSHIP_IN: &str = "ownership-in";
/// Format of snapshot pieces.
const PIECE_VERSION: u8 = 3;

/// One piece of a snapshot: the ownership (first piece only) and rows in
/// stored order, each piece's rows after the last piece's.
#[derive(Debug, Serialize, Deserialize)]
struct KvPiece {
    ownership: Option<Ownership>,
    rows: Vec<PieceRow>,
}

/// A stored key and its stored record, as the table holds them.
#[derive(Debug, Serialize, Deserialize)]
struct PieceRow {
    #[serde(with = "serde_bytes")]
    key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    value: Vec<u8>,
}

/// Reads a PRG's tables out of one read transaction, a piece at a time:
/// its keys, then its element rows (stored order across both).
struct KvPieces {
    ownership: Option<Ownership>,
    /// The tables still to read, the one being read first.
    tables: std::collections::VecDeque<ReadOnly>,
    after: Option<Vec<u8>>,
    /// Slots being purged: their rows are not part of the state.
    skip: BTreeSet<u32>,
}

impl SnapshotPieces for KvPieces {
    fn next_piece(&mut self, max_bytes: usize) -> Result<Option<Vec<u8>>, String> {
        let ownership = self.ownership.take();
        let mut rows: Vec<PieceRow> = Vec::new();
        let mut bytes = 0;
        while let Some(t) = self.tables.front() {
            let lower = self.after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let before = rows.len();
            for row in Skipping::new(t, lower, Bound::Unbounded, &self.skip).map_err(|e| e.to_string())? {
                let (key, value) = row.map_err(|e| e.to_string())?;
                bytes += key.len() + value.len();
                rows.push(PieceRow { key, value });
                if bytes >= max_bytes {
                    break;
                }
            }
            if rows.len() == before {
                // This table is done; the next one's keys all sort after it.
                self.tables.pop_front();
                continue;
            }
            self.after = rows.last().map(|r| r.key.clone());
            if bytes >= max_bytes {
                break;
            }
        }
        if ownership.is_none() && rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(encode_versioned(PIECE_VERSION, &KvPiece { ownership, rows })))
    }
}

/// Drop what an unfinished snapshot transfer staged for `group`.
fn drop_staged(txn: &WriteTransaction, group: &str, staging: &str) -> Result<(), String> {
    txn.delete_table(Def::new(staging)).map_err(|e| e.to_string())?;
    txn.delete_table(Def::new(&elements_table(staging))).map_err(|e| e.to_string())?;
    let mut m = txn.open_table(META).map_err(|e| e.to_string())?;
    m.remove((group, OWNERSHIP_IN)).map_err(|e| e.to_string())?;
    Ok(())
}

/// Read a stored ownership record of either format.
fn decode_ownership(b: &[u8]) -> Result<Ownership, String> {
    match split_version(b) {
        (OWNERSHIP_VERSION, body) => decode(body).map_err(|e| e.to_string()),
        (1, body) => decode::<OwnershipV1>(body).map(Ownership::from).map_err(|e| e.to_string()),
        (v, _) => Err(format!("ownership record of unknown version {v}")),
    }
}

impl KvMachine {
    /// A machine with the ownership of its creation, reading `kvs/<group>`.
    pub fn new(group: &str, spec: &KvSpec) -> Self {
        let inner = Inner {
            layers: Layers::default(),
            ownership: Ownership::genesis(spec.slots, &spec.genesis),
            ownership_dirty: false,
            purging: Purging::default(),
            exports: BTreeMap::new(),
            last_index: 0,
            element_slots: BTreeSet::new(),
            deadlines: Mutex::default(),
            changes: 0,
        };
        Self {
            group: group.to_string(),
            spec: spec.clone(),
            table: format!("kvs/{group}"),
            staging: format!("kvs-in/{group}"),
            inner: RwLock::new(inner),
            purged: Arc::default(),
            waiters: Waiters::default(),
            notices: Notices::default(),
        }
    }

    /// The machine of `group` as the state file holds it. The spec is
    /// recorded the first time (`spec`), and read back on later opens; rows
    /// in the table layout from before slots were stored with their keys
    /// (`kv/<group>`) are moved into the current one.
    pub async fn open(group: &str, spec: Option<KvSpec>, storage: &Storage) -> Result<Self, StoreError> {
        let stored: Option<KvSpec> = read_versioned(storage.state(), group, SPEC)?;
        let spec = match (stored, spec) {
            (Some(s), _) => s,
            (None, Some(s)) => s,
            (None, None) => return Err(StoreError::Db(format!("PRG {group} has no recorded shape yet"))),
        };
        let machine = Self::new(group, &spec);
        let legacy = format!("kv/{group}");
        let (name, table, staging) = (group.to_string(), machine.table.clone(), machine.staging.clone());
        let bytes = encode_versioned(META_VERSION, &spec);
        let slots = spec.slots;
        storage
            .state()
            .writer()
            .call(true, move |txn| {
                put_meta(txn, &name, SPEC, &bytes)?;
                // A transfer cut off by a restart starts over from its first piece.
                drop_staged(txn, &name, &staging)?;
                migrate(txn, &legacy, &table, slots)
            })
            .await?;
        machine.load(storage.state())?;
        Ok(machine)
    }

    /// Read the ownership and applied index the state file holds.
    fn load(&self, state: &Db) -> Result<(), StoreError> {
        let ownership = match read_raw(state, &self.group, OWNERSHIP)? {
            Some(b) => {
                Some(decode_ownership(&b).map_err(|e| StoreError::Corrupt(format!("{} ownership: {e}", self.group)))?)
            }
            None => None,
        };
        let applied: Option<Option<LogId>> = read_plain(state, &self.group, "applied")?;
        let purging: Option<BTreeSet<u32>> = read_versioned(state, &self.group, PURGING)?;
        let element_slots = slots_with_elements(state, &self.table)?;
        let mut inner = self.inner.write().expect("kv lock");
        inner.element_slots = element_slots;
        if let Some(o) = ownership {
            inner.ownership = o;
        }
        inner.purging = Arc::new(purging.unwrap_or_default());
        inner.last_index = applied.flatten().map_or(0, |l| l.index);
        let since = inner.last_index;
        let moving: Vec<MoveId> = inner
            .ownership
            .states()
            .filter_map(|(_, s)| match s {
                SlotState::Owned { exporting: Some(m) } | SlotState::Fenced { move_id: m } => Some(m),
                _ => None,
            })
            .collect();
        inner.exports = moving.into_iter().map(|m| (m, Export { since, changed: BTreeMap::new() })).collect();
        inner.layers = Layers::default();
        inner.ownership_dirty = false;
        Ok(())
    }

    /// The clients blocked on this PRG's keys on this replica.
    pub fn waiters(&self) -> &Waiters {
        &self.waiters
    }

    pub fn notices(&self) -> &Notices {
        &self.notices
    }

    /// The current ownership (a copy), for status pages and tests.
    pub fn ownership(&self) -> Ownership {
        self.inner.read().expect("kv lock").ownership.clone()
    }

    /// Run `f` on a view of the latest applied state on this replica.
    fn with_view<R>(
        &self,
        storage: &Storage,
        f: impl FnOnce(&View<'_, Table>, &Inner) -> Result<R, KvError>,
    ) -> Result<R, StoreError> {
        let inner = self.inner.read().expect("kv lock");
        // The table is opened after the layers are held: a flush that
        // commits in between only moves data the frozen layer still shows,
        // and only deletes rows of slots in the purging set read here (the
        // set changes with the frozen layer, under this lock).
        let txn = storage.state().read()?;
        let view = View {
            stack: inner.layers.stack(),
            base: open_table(&txn, &self.table, inner.purging.clone()).map_err(StoreError::Db)?,
            ownership: &inner.ownership,
            scan_slots: None,
        };
        f(&view, &inner).map_err(|e| StoreError::Db(e.0))
    }

    fn with_deadlines<R>(&self, f: impl FnOnce(&mut Deadlines) -> R) -> R {
        f(&mut self.inner.read().expect("kv lock").locked_deadlines())
    }

    /// Whether every key stored with a TTL has its deadline noted here
    /// ([`crate::kv_deadlines`]): if not, the reaper walks the keys.
    pub fn deadlines_whole(&self) -> bool {
        self.with_deadlines(|d| d.whole())
    }

    /// The reaper begins a walk of the keys (to note every deadline),
    /// resuming a note that went over its cap with `resume`: the walk's
    /// era, for [`KvMachine::walk_ended`].
    pub fn walk_begins(&self, resume: bool) -> u64 {
        self.with_deadlines(|d| d.walk_begins(resume))
    }

    /// The walk that began in `era` met every key.
    pub fn walk_ended(&self, era: u64) {
        self.with_deadlines(|d| d.walked(era));
    }

    /// Keys whose deadlines are noted here, and whether the note went
    /// over its cap (for metrics).
    pub fn noted_deadlines(&self) -> (usize, bool) {
        self.with_deadlines(|d| (d.noted(), d.over()))
    }

    /// The reaper's look at the keys whose noted deadline passed before
    /// `now_ms`, soonest first, up to `limit`: those expired, by slot, in
    /// `expired`, and in `next` the first one not looked at, if any. A key
    /// stored again meanwhile is noted afresh, one gone is forgotten; a
    /// slot being copied in or fenced keeps its keys for later.
    pub fn expiry_due(&self, storage: &Storage, limit: usize, now_ms: u64) -> Result<ExpirySample, StoreError> {
        self.with_view(storage, |view, inner| {
            let o = &inner.ownership;
            let mut deadlines = inner.locked_deadlines();
            let mut sample = ExpirySample::default();
            let mut fixes = Vec::new();
            // Keys of slots not served yet are passed over, a bounded
            // number of them, so that they hold up no other key.
            let mut waiting = 0;
            for key in deadlines.due(now_ms) {
                if sample.examined == limit.max(1) || waiting == WAITING_PER_LOOK {
                    sample.next = Some(key.to_vec());
                    break;
                }
                let slot = slot_of(key, o.slot_count());
                match o.state(slot) {
                    Some(SlotState::Owned { .. }) => {}
                    Some(SlotState::Importing { .. } | SlotState::Fenced { .. }) => {
                        waiting += 1;
                        continue;
                    }
                    Some(SlotState::Gone { .. }) | None => {
                        fixes.push((key.to_vec(), None));
                        continue;
                    }
                }
                sample.examined += 1;
                match view.get(key)? {
                    Some(rec) if !rec.is_live(now_ms) => {
                        sample.with_ttl += 1;
                        sample.expired.entry(slot).or_default().push(key.to_vec());
                    }
                    rec => fixes.push((key.to_vec(), rec.and_then(|r| r.expire_at_ms))),
                }
            }
            for (key, at) in fixes {
                deadlines.note(&key, at);
            }
            Ok(sample)
        })
    }

    /// The reaper's walk, one look at this replica: up to `limit` keys of
    /// the slots it serves after the key `after`, in stored order (slot,
    /// then key). Among them, those expired at `now_ms` by slot, and how
    /// many carry a TTL (their deadlines are noted); `next` is where the
    /// next look starts (`None`: the end).
    pub fn expiry_sample(
        &self,
        storage: &Storage,
        after: Option<&[u8]>,
        limit: usize,
        now_ms: u64,
    ) -> Result<ExpirySample, StoreError> {
        let limit = limit.max(1);
        self.with_view(storage, |view, inner| {
            let slots = inner.ownership.slot_count();
            let rows = view.scan(after, limit)?;
            let next = if rows.len() < limit { None } else { rows.last().map(|(k, _)| k.clone()) };
            let mut sample = ExpirySample { examined: rows.len(), next, ..ExpirySample::default() };
            let mut deadlines = inner.locked_deadlines();
            for (key, rec) in rows {
                sample.with_ttl += usize::from(rec.expire_at_ms.is_some());
                deadlines.note(&key, rec.expire_at_ms);
                if !rec.is_live(now_ms) {
                    sample.expired.entry(slot_of(&key, slots)).or_default().push(key);
                }
            }
            Ok(sample)
        })
    }

    /// Evaluate a read against the latest applied state on this replica,
    /// or say why this PRG does not serve it.
    pub fn read(&self, storage: &Storage, op: &ReadOp, now_ms: u64) -> Result<Outcome, StoreError> {
        if let ReadOp::Scan { .. } = op {
            return self.scan_page(storage, op, now_ms);
        }
        self.with_view(storage, |view, inner| match refusal(&inner.ownership, &op.keys(), false) {
            Some(r) => Ok(Err(r)),
            // WATCH's versions come with the PRG they belong to.
            None if matches!(op, ReadOp::Versions { .. }) => engine::read(op, now_ms, view)
                .map(|versions| Ok(Reply::Array(vec![Reply::Bulk(self.group.clone().into_bytes()), versions]))),
            None if matches!(op, ReadOp::Changes) => Ok(Ok(Reply::Int(inner.changes as i64))),
            None => engine::read(op, now_ms, view).map(Ok),
        })
    }

    /// A SCAN page over the run of `slots` this PRG serves from the first:
    /// a PRG that does not serve the first slot says where it went, and
    /// the page stops at the first slot it does not serve.
    fn scan_page(&self, storage: &Storage, op: &ReadOp, now_ms: u64) -> Result<Outcome, StoreError> {
        let ReadOp::Scan { slots, after, .. } = op else {
            return Err(StoreError::Db("a SCAN page of an op that is not SCAN".into()));
        };
        self.with_view(storage, |view, inner| {
            let o = &inner.ownership;
            let end = slots.end.min(o.slot_count());
            if let Err(r) = o.check_read(slots.start) {
                return Ok(Err(r));
            }
            if after.as_deref().is_some_and(|k| slot_of(k, o.slot_count()) != slots.start) {
                return Err(KvError(format!("SCAN resumes after a key outside slot {}", slots.start)));
            }
            let run = slots.start..(slots.start + 1..end).find(|s| o.check_read(*s).is_err()).unwrap_or(end);
            let view =
                View { stack: view.stack.clone(), base: &view.base, ownership: o, scan_slots: Some(run.clone()) };
            let mut op = op.clone();
            if let ReadOp::Scan { slots, .. } = &mut op {
                *slots = run;
            }
            engine::read(&op, now_ms, &view).map(Ok)
        })
    }

    /// Whether this replica's applied ownership lets a request with `keys`
    /// through (the leader's check before proposing or reading).
    pub fn check(&self, keys: &[&[u8]], write: bool) -> Result<(), Refusal> {
        let inner = self.inner.read().expect("kv lock");
        match refusal(&inner.ownership, keys, write) {
            Some(r) => Err(r),
            None => Ok(()),
        }
    }

    /// Number of stored records of served slots (expired ones included),
    /// for status pages.
    pub fn stored_keys(&self, storage: &Storage) -> Result<u64, StoreError> {
        self.with_view(storage, |view, _| view.len())
    }

    /// About how many bytes of rows this replica stores, the copies of
    /// slots it imports and the rows of dropped slots not yet purged
    /// included (they are on its disk): its row count times the mean size of a
    /// sample of its first rows. Every report a node makes asks it, so it
    /// reads no more than the sample: the counts are redb's and the
    /// layers', never a scan (a scan of a slot being moved in or dropped
    /// reads every row of it, and holds up the node's other work as long).
    pub fn approx_bytes(&self, storage: &Storage) -> Result<u64, StoreError> {
        const SAMPLE: usize = 64;
        self.with_view(storage, |view, _| {
            let first = overlay::first_element();
            let split = Bound::Excluded(&first[..]);
            let mut total = 0;
            // Keys, then element rows (as flushed: close enough for a size).
            let parts = [
                (overlay::approx_len(&view.stack, &view.base)?, Bound::Unbounded, split),
                (view.base.element_rows()?, Bound::Included(&first[..]), Bound::Unbounded),
            ];
            for (rows, lower, upper) in parts {
                let sample = overlay::sample(&view.stack, &view.base, lower, upper, SAMPLE)?;
                let bytes: u64 = sample.iter().map(|(key, rec)| (key.len() + rec.encode().len()) as u64).sum();
                total += bytes.checked_div(sample.len() as u64).map_or(0, |mean| rows * mean);
            }
            Ok(total)
        })
    }

    /// Up to `max_bytes` of rows of the slots `move_id` exports, after the
    /// stored key `after` (from the start with `None`), and whether the end
    /// was reached. Rows are read from one consistent view.
    pub fn export_rows(
        &self,
        storage: &Storage,
        move_id: MoveId,
        after: Option<&[u8]>,
        max_bytes: usize,
    ) -> Result<(Vec<Row>, bool), DeltaError> {
        let slots = self.inner.read().expect("kv lock").ownership.exporting(move_id);
        if slots.is_empty() {
            return Err(DeltaError::NotExporting(move_id));
        }
        self.with_view(storage, |view, _| {
            let mut out = Vec::new();
            let mut bytes = 0usize;
            let first = after.map_or(0, slot_of_stored);
            // Each slot's keys, then its element rows.
            let ranges = slots.into_iter().filter(|s| *s >= first).flat_map(slot_ranges);
            for (lo, hi) in ranges {
                // Resume after the cursor in the range it is in; skip the
                // ranges of its slot that end before it.
                let ends_before = |a: &[u8]| matches!(&hi, Bound::Excluded(h) if h.as_slice() <= a);
                let mut lower: Bound<Vec<u8>> = match after {
                    Some(a) if ends_before(a) => continue,
                    Some(a) if matches!(&lo, Bound::Included(l) if l.as_slice() <= a) => Bound::Excluded(a.to_vec()),
                    _ => lo,
                };
                loop {
                    let page = overlay::scan_range(&view.stack, &view.base, as_ref(&lower), as_ref(&hi), 256)?;
                    let Some((last, _)) = page.last() else { break };
                    lower = Bound::Excluded(last.clone());
                    for (key, rec) in page {
                        let row = Row { key, record: Some(rec.encode()) };
                        bytes += row.size();
                        out.push(row);
                        if bytes >= max_bytes {
                            return Ok((out, false));
                        }
                    }
                }
            }
            Ok((out, true))
        })
        .map_err(DeltaError::from)
    }

    /// The rows of `move_id`'s slots that changed after log index `after`,
    /// as they are now, and the index they are current as of.
    pub fn delta(&self, storage: &Storage, move_id: MoveId, after: u64) -> Result<(Vec<Row>, u64), DeltaError> {
        // One lock for the keys, their values and the index they are
        // current as of: a write applied in between would otherwise be
        // counted as sent without its key being in the answer.
        let mut inner = self.inner.write().expect("kv lock");
        let e = inner.exports.get_mut(&move_id).ok_or(DeltaError::NotExporting(move_id))?;
        if after < e.since {
            return Err(DeltaError::Lost { after, since: e.since });
        }
        // What was asked for before `after` is never asked for again.
        e.changed.retain(|_, at| *at > after);
        let keys: Vec<Vec<u8>> = e.changed.keys().cloned().collect();
        let txn = storage.state().read()?;
        let base = open_table(&txn, &self.table, inner.purging.clone()).map_err(StoreError::Db)?;
        let stack = inner.layers.stack();
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            let record = overlay::get(&stack, &base, &key).map_err(|e| StoreError::Db(e.0))?.map(|r| r.encode());
            rows.push(Row { key, record });
        }
        Ok((rows, inner.last_index))
    }

    fn apply_writes(&self, inner: &mut Inner, state: &Db, now_ms: u64, ops: &[WriteOp]) -> Result<Vec<u8>, String> {
        let purging = inner.purging.clone();
        let base = LazyTable { table: &self.table, state, purging, opened: OnceCell::new() };
        let mut view = WriteView { target: Target::Applied(inner), base, writes: 0 };
        let mut out: Vec<Outcome> = Vec::with_capacity(ops.len());
        let flags = self.notices.flags();
        let mut events = Vec::new();
        for op in ops {
            let refused = match op {
                WriteOp::Flush => unsettled(&view.inner().ownership),
                _ => refusal(&view.inner().ownership, &op.keys(), true),
            };
            out.push(match (refused, op) {
                (Some(r), _) => Err(r),
                // Versions WATCH read from another PRG (the slot moved
                // since) say nothing here: the transaction fails as if a
                // watched key had changed.
                (None, WriteOp::Exec { watch: Some(w), .. }) if w.prg != self.group => Ok(Reply::NilArray),
                (None, WriteOp::Script { watch, .. }) if watch.prg != self.group => Ok(Reply::NilArray),
                (None, _) if notify::noting(flags) => {
                    Ok(notify::apply_noting(op, now_ms, &mut view, flags, &mut events).map_err(|e| e.0)?)
                }
                (None, _) => Ok(engine::apply(op, now_ms, &mut view).map_err(|e| e.0)?),
            });
            if self.waiters.any() && out.last().is_some_and(|r| r.as_ref().is_ok_and(|r| !changes_nothing(op, r))) {
                // A flush wakes everyone: XREADGROUP answers that its
                // stream went.
                if matches!(op, WriteOp::Flush) {
                    self.waiters.wake_all();
                } else {
                    self.waiters.wake(op.keys());
                }
            }
        }
        if !events.is_empty() {
            self.notices.send(&self.group, events);
        }
        Ok(encode(&out))
    }

    fn apply_slots(inner: &mut Inner, index: u64, cmd: &SlotCommand) -> ControlOutcome {
        let effects = inner.ownership.apply(cmd).map_err(|e| e.to_string())?;
        inner.ownership_dirty = true;
        // Slots served now that were not (an import adopted, a fence
        // lifted) may hold keys that were stored before this replica
        // started, which its reaper's walks skipped: it walks again.
        inner.deadlines().unsettle();
        if !effects.drop_slots.is_empty() {
            let slots = inner.ownership.slot_count();
            inner.deadlines().forget_if(|key| effects.drop_slots.contains(&slot_of(key, slots)));
        }
        for slot in effects.drop_slots {
            inner.layers.active.drop_slot(slot);
            inner.element_slots.remove(&slot);
        }
        match cmd {
            SlotCommand::BeginExport { move_id, .. } => {
                inner.exports.entry(*move_id).or_insert(Export { since: index, changed: BTreeMap::new() });
            }
            SlotCommand::Unfence { move_id, .. } | SlotCommand::Release { move_id, .. } => {
                inner.exports.remove(move_id);
            }
            _ => {}
        }
        Ok(index)
    }

    fn apply_rows(inner: &mut Inner, index: u64, move_id: MoveId, rows: &[Row]) -> ControlOutcome {
        let mut decoded = Vec::with_capacity(rows.len());
        for row in rows {
            let slot = slot_of_stored(&row.key);
            match inner.ownership.state(slot) {
                Some(SlotState::Importing { move_id: m }) if m == move_id => {}
                other => return Err(format!("move {move_id}: slot {slot} is {other:?}, not importing for it")),
            }
            // Keys are stamped with this PRG's index: a version names a
            // write in the log of the PRG that holds the record. Element
            // rows carry no version.
            let rec = match &row.record {
                Some(b) => {
                    let rec = Record::decode(b).map_err(|e| format!("move {move_id}: bad row: {e}"))?;
                    Some(if overlay::is_element(&row.key) { rec } else { rec.stamped(index) })
                }
                None => None,
            };
            if !overlay::is_element(&row.key) {
                inner.deadlines().note(row.key.get(4..).unwrap_or_default(), rec.as_ref().and_then(|r| r.expire_at_ms));
            } else if rec.is_some() {
                inner.element_slots.insert(slot);
            }
            decoded.push((row.key.as_slice(), rec));
        }
        for (key, rec) in decoded {
            inner.layers.active.put(key, rec);
        }
        Ok(index)
    }
}

/// Write `layer`'s changes to one of a PRG's tables (range 0 of each slot
/// for the keys' table, 1 for the element rows'): its clear, the slots
/// `whole` empties, then rows of the `purge` slots until `budget` bytes
/// are spent, then `entries`, that table's share of its rows. Returns the
/// `purge` slots that hold no rows in this table now.
fn flush_into<'a>(
    txn: &WriteTransaction,
    name: &str,
    layer: &Layer,
    range: usize,
    (whole, purge): (&BTreeSet<u32>, &BTreeSet<u32>),
    budget: &mut usize,
    entries: impl Iterator<Item = (&'a Vec<u8>, &'a Option<Record>)>,
) -> Result<BTreeSet<u32>, String> {
    let mut t = txn.open_table(Def::new(name)).map_err(|e| e.to_string())?;
    if layer.cleared {
        t.retain(|_, _| false).map_err(|e| e.to_string())?;
    }
    for slot in whole {
        let (lo, hi) = &slot_ranges(*slot)[range];
        t.retain_in::<&[u8], _>((as_ref(lo), as_ref(hi)), |_, _| false).map_err(|e| e.to_string())?;
    }
    let mut emptied = BTreeSet::new();
    for slot in purge {
        if *budget == 0 {
            break;
        }
        if purge::purge_some(&mut t, &slot_ranges(*slot)[range], budget).map_err(|e| e.to_string())? {
            emptied.insert(*slot);
        }
    }
    for (key, rec) in entries {
        match rec {
            Some(rec) => t.insert(key.as_slice(), rec.encode().as_slice()).map(drop),
            None => t.remove(key.as_slice()).map(drop),
        }
        .map_err(|e| e.to_string())?;
    }
    Ok(emptied)
}

/// Move every row of the table `legacy` (keys without their slot) into
/// `table`, and delete `legacy`.
fn migrate(txn: &WriteTransaction, legacy: &str, table: &str, slots: u32) -> Result<(), String> {
    // Opening a table in a write transaction would create it: look first.
    let exists = txn.list_tables().map_err(|e| e.to_string())?.any(|t| t.name() == legacy);
    if !exists {
        return Ok(());
    }
    let rows: Vec<(Vec<u8>, Vec<u8>)> = match txn.open_table(Def::new(legacy)) {
        Ok(t) => {
            let mut rows = Vec::new();
            for row in t.iter().map_err(|e| e.to_string())? {
                let (k, v) = row.map_err(|e| e.to_string())?;
                rows.push((k.value().to_vec(), v.value().to_vec()));
            }
            rows
        }
        Err(TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    {
        let mut t = txn.open_table(Def::new(table)).map_err(|e| e.to_string())?;
        for (k, v) in &rows {
            t.insert(stored_key(slot_of(k, slots), k).as_slice(), v.as_slice()).map_err(|e| e.to_string())?;
        }
    }
    txn.delete_table(Def::new(legacy)).map_err(|e| e.to_string())?;
    tracing::info!(table, rows = rows.len(), "moved rows into the slot-first table");
    Ok(())
}

fn read_raw(db: &Db, group: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let txn = db.read()?;
    let t = txn.open_table(META).map_err(StoreError::db)?;
    Ok(t.get((group, name)).map_err(StoreError::db)?.map(|v| v.value().to_vec()))
}

fn read_plain<T: serde::de::DeserializeOwned>(db: &Db, group: &str, name: &str) -> Result<Option<T>, StoreError> {
    read_raw(db, group, name)?
        .map(|b| decode(&b).map_err(|e| StoreError::Corrupt(format!("{group} {name}: {e}"))))
        .transpose()
}

fn read_versioned<T: serde::de::DeserializeOwned>(db: &Db, group: &str, name: &str) -> Result<Option<T>, StoreError> {
    let Some(b) = read_raw(db, group, name)? else { return Ok(None) };
    decode_versioned(&b).map(Some).map_err(|e| StoreError::Corrupt(format!("{group} {name}: {e}")))
}

/// A metadata record written with [`META_VERSION`].
fn decode_versioned<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, String> {
    match split_version(b) {
        (META_VERSION, body) => decode(body).map_err(|e| e.to_string()),
        (v, _) => Err(format!("record of unknown version {v}")),
    }
}

impl Machine for KvMachine {
    fn apply(&self, state: &Db, index: u64, now_ms: u64, body: &[u8]) -> Result<Vec<u8>, String> {
        // An entry that cannot be read stops the group: skipping it would
        // let this replica diverge from the others.
        let entry = decode_entry(body).map_err(|e| format!("{}: entry {index} cannot be applied: {e}", self.group))?;
        let mut inner = self.inner.write().expect("kv lock");
        inner.last_index = index;
        match &entry {
            KvEntry::Writes(ops) => self.apply_writes(&mut inner, state, now_ms, ops),
            KvEntry::Slots(cmd) => {
                self.waiters.wake_all();
                Ok(encode(&Self::apply_slots(&mut inner, index, cmd)))
            }
            KvEntry::Rows { move_id, rows } => {
                self.waiters.wake_all();
                Ok(encode(&Self::apply_rows(&mut inner, index, *move_id, rows)))
            }
        }
    }

    fn unflushed_bytes(&self) -> usize {
        self.inner.read().expect("kv lock").layers.active.bytes
    }

    fn freeze(&self) -> FlushJob {
        let (frozen, ownership, before) = {
            let mut inner = self.inner.write().expect("kv lock");
            debug_assert!(inner.layers.frozen.is_none(), "a flush is already under way");
            let frozen = Arc::new(std::mem::take(&mut inner.layers.active));
            inner.layers.frozen = Some(frozen.clone());
            let ownership = std::mem::take(&mut inner.ownership_dirty)
                .then(|| encode_versioned(OWNERSHIP_VERSION, &inner.ownership));
            (frozen, ownership, inner.purging.clone())
        };
        let table = self.table.clone();
        let group = self.group.clone();
        let out = self.purged.clone();
        Box::new(move |txn: &WriteTransaction| {
            let split = overlay::first_element().to_vec();
            let layer = &*frozen;
            let plan = purge::plan(&before, layer);
            let mut budget = PURGE_BYTES;
            let keys = layer.entries.range(..split.clone());
            let emptied = flush_into(txn, &table, layer, 0, (&plan.whole, &plan.purging), &mut budget, keys)?;
            // Most PRGs hold no collections: their element table is left alone.
            let elements = layer.entries.range(split..);
            let mut purging = plan.purging.clone();
            if layer.cleared || !plan.whole.is_empty() || !purging.is_empty() || elements.clone().next().is_some() {
                // A slot leaves the set once its element rows are gone too.
                let name = elements_table(&table);
                let done = flush_into(txn, &name, layer, 1, (&plan.whole, &emptied), &mut budget, elements)?;
                purging.retain(|s| !done.contains(s));
            }
            if purging != *before || budget < PURGE_BYTES {
                let purged = PURGE_BYTES - budget;
                tracing::debug!(%group, purged, left = ?purging, "purged rows of dropped slots");
            }
            if purging != *before {
                if purging.is_empty() {
                    let mut m = txn.open_table(META).map_err(|e| e.to_string())?;
                    m.remove((group.as_str(), PURGING)).map_err(|e| e.to_string())?;
                } else {
                    put_meta(txn, &group, PURGING, &encode_versioned(META_VERSION, &purging))?;
                }
            }
            if let Some(o) = &ownership {
                put_meta(txn, &group, OWNERSHIP, o)?;
            }
            *out.lock().expect("purge lock") = Some(purging);
            Ok(())
        })
    }

    fn backlog(&self) -> bool {
        let inner = self.inner.read().expect("kv lock");
        !inner.purging.is_empty() || !inner.layers.active.dropped.is_empty()
    }

    fn flushed(&self, ok: bool) {
        let purged = self.purged.lock().expect("purge lock").take();
        let mut inner = self.inner.write().expect("kv lock");
        if ok {
            inner.layers.frozen = None;
            if let Some(p) = purged {
                inner.purging = Arc::new(p);
            }
        } else {
            // The ownership must be written again with the next flush.
            inner.ownership_dirty = true;
        }
    }

    fn export(&self, txn: &ReadTransaction) -> Result<Box<dyn SnapshotPieces>, String> {
        let Table { keys, elements, .. } = open_table(txn, &self.table, Purging::default())?;
        let tables = keys.into_iter().chain(elements).collect();
        let m = txn.open_table(META).map_err(|e| e.to_string())?;
        // The rows of slots being purged stay behind.
        let skip = match m.get((self.group.as_str(), PURGING)).map_err(|e| e.to_string())? {
            Some(v) => decode_versioned(v.value()).map_err(|e| format!("{} {PURGING}: {e}", self.group))?,
            None => BTreeSet::new(),
        };
        let ownership = match m.get((self.group.as_str(), OWNERSHIP)).map_err(|e| e.to_string())? {
            Some(v) => decode_ownership(v.value())?,
            // Never changed in the state file: still the ownership of its creation.
            None => Ownership::genesis(self.spec.slots, &self.spec.genesis),
        };
        Ok(Box::new(KvPieces { ownership: Some(ownership), tables, after: None, skip }))
    }

    fn stage(&self, first: bool, piece: &[u8]) -> Result<FlushJob, String> {
        let piece: Option<KvPiece> = if piece.is_empty() {
            None
        } else {
            match split_version(piece) {
                (PIECE_VERSION, b) => Some(decode(b).map_err(|e| format!("snapshot piece: {e}"))?),
                (v, _) => return Err(format!("snapshot piece of format {v}: this node reads format {PIECE_VERSION}")),
            }
        };
        let ownership = match piece.as_ref().and_then(|p| p.ownership.as_ref()) {
            Some(o) if o.slot_count() != self.spec.slots => {
                return Err(format!(
                    "snapshot of {} slots for {}, a PRG of {} slots",
                    o.slot_count(),
                    self.group,
                    self.spec.slots
                ))
            }
            Some(o) => Some(encode_versioned(OWNERSHIP_VERSION, o)),
            None => None,
        };
        let rows = piece.map(|p| p.rows).unwrap_or_default();
        let (group, staging) = (self.group.clone(), self.staging.clone());
        Ok(Box::new(move |txn: &WriteTransaction| {
            if first {
                drop_staged(txn, &group, &staging)?;
            }
            if let Some(o) = &ownership {
                put_meta(txn, &group, OWNERSHIP_IN, o)?;
            }
            let split = rows.partition_point(|r| !overlay::is_element(&r.key));
            for (name, part) in [(staging.clone(), &rows[..split]), (elements_table(&staging), &rows[split..])] {
                if part.is_empty() {
                    continue;
                }
                let mut t = txn.open_table(Def::new(&name)).map_err(|e| e.to_string())?;
                for r in part {
                    t.insert(r.key.as_slice(), r.value.as_slice()).map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        }))
    }

    /// None: each piece's rows go into the staging table as the piece
    /// arrives, so a PRG's snapshot is bounded by its disk, not by memory,
    /// and a PRG may hold more than any fixed bound would allow (refusing
    /// its snapshot would leave a new replica unable ever to catch up).
    fn max_snapshot_bytes(&self) -> Option<u64> {
        None
    }

    fn unstage(&self) -> FlushJob {
        let (group, staging) = (self.group.clone(), self.staging.clone());
        Box::new(move |txn: &WriteTransaction| drop_staged(txn, &group, &staging))
    }

    fn check_staged(&self, state: &Db) -> Result<(), String> {
        match read_raw(state, &self.group, OWNERSHIP_IN).map_err(|e| e.to_string())? {
            Some(_) => Ok(()),
            None => Err(format!("{}: the staged snapshot carries no ownership", self.group)),
        }
    }

    fn import_staged(&self, txn: &WriteTransaction) -> Result<(), String> {
        let ownership = {
            let mut m = txn.open_table(META).map_err(|e| e.to_string())?;
            let staged = m.remove((self.group.as_str(), OWNERSHIP_IN)).map_err(|e| e.to_string())?;
            let staged = staged.map(|v| v.value().to_vec());
            // The snapshot holds no rows of slots this replica was purging.
            m.remove((self.group.as_str(), PURGING)).map_err(|e| e.to_string())?;
            staged
        };
        for (table, staging) in
            [(self.table.clone(), self.staging.clone()), (elements_table(&self.table), elements_table(&self.staging))]
        {
            txn.delete_table(Def::new(&table)).map_err(|e| e.to_string())?;
            match txn.rename_table(Def::new(&staging), Def::new(&table)) {
                // No rows were staged: the PRG holds none.
                Ok(()) | Err(TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        // Checked before the install: a staged snapshot always has one.
        match ownership {
            Some(o) => put_meta(txn, &self.group, OWNERSHIP, &o),
            None => Ok(()),
        }
    }

    fn reload(&self, state: &Db) -> Result<(), String> {
        let loaded = self.load(state).map_err(|e| e.to_string());
        // Everything may differ after a snapshot: blocked clients look
        // again, and the reaper walks the keys to note their deadlines.
        self.waiters.wake_all();
        self.with_deadlines(Deadlines::forget_all);
        loaded
    }

    fn purge(&self, txn: &WriteTransaction) -> Result<(), String> {
        drop_staged(txn, &self.group, &self.staging)?;
        txn.delete_table(Def::new(&elements_table(&self.table))).map_err(|e| e.to_string())?;
        txn.delete_table(Def::new(&self.table)).map(drop).map_err(|e| e.to_string())
    }

    /// Element rows first, then keys; the tables go once they are empty.
    fn purge_some(&self, txn: &WriteTransaction, mut budget: usize) -> Result<bool, String> {
        let everything: crate::kv_overlay::KeyRange = (Bound::Unbounded, Bound::Unbounded);
        for name in [elements_table(&self.table), self.table.clone()] {
            let mut t = txn.open_table(Def::new(&name)).map_err(|e| e.to_string())?;
            if !purge::purge_some(&mut t, &everything, &mut budget).map_err(|e| e.to_string())? {
                return Ok(false);
            }
        }
        self.purge(txn).map(|()| true)
    }
}

#[cfg(test)]
#[path = "kv_machine_tests.rs"]
mod tests;

#[path = "kv_script.rs"]
mod script;
pub use script::ScriptRun;
