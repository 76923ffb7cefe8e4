//! Small collections kept whole in their header record.
//!
//! A hash, set, list or sorted set of at most [`MAX_ROWS`] element rows
//! that take at most [`MAX_BYTES`] together is *packed*: its rows follow
//! its header's words inside the header record itself, so a change to it
//! reads and writes one record, as a SET does, and it takes one row of
//! storage. The change that takes it past either limit writes its rows out
//! as element rows, and it keeps them from then on, as Redis never turns
//! a hashtable or skiplist back into a listpack.
//!
//! ```text
//!  key ──► Record { kind, value: words (padded to 24 bytes) ‖ their length (1 byte) ‖ rows }
//!  rows: (LEB128 sub-key length ‖ sub-key ‖ LEB128 row length ‖ row)*, in sub-key order
//! ```
//!
//! A header's words are at most 24 bytes, so a collection's record longer
//! than that is packed. The collection code never sees the difference: the
//! engine runs every command on [`Packed`] (reads) or [`PackedMut`]
//! (writes), views of the store in which a packed collection's rows are
//! element rows like any other and its record holds only its words.
//! Streams are never packed.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use super::record::{Kind, Record};
use super::store::{within, ElementRows, KvStore, StoreError};

/// The most element rows a packed collection holds: as many entries as
/// Redis keeps in a listpack by default.
const MAX_ROWS: usize = 128;
/// The most bytes a packed collection's rows take.
const MAX_BYTES: usize = 4096;
/// The longest a collection header's own words are.
const WORDS: usize = 24;

type Rows = BTreeMap<Vec<u8>, Vec<u8>>;

fn packable(kind: Kind) -> bool {
    matches!(kind, Kind::Hash | Kind::Set | Kind::List | Kind::ZSet)
}

/// Whether `rec` holds a packed collection.
pub(super) fn is_packed(rec: &Record) -> bool {
    packable(rec.kind) && rec.value.len() > WORDS
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn take_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut n = 0usize;
    for (i, b) in bytes.iter().enumerate().take(5) {
        n |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, &bytes[i + 1..]));
        }
    }
    None
}

fn cut_short() -> StoreError {
    StoreError("a packed collection's record is cut short".into())
}

/// A packed record split into its words-only record and its rows.
fn unpack(mut rec: Record) -> Result<(Record, Rows), StoreError> {
    let words = usize::from(*rec.value.get(WORDS).ok_or_else(cut_short)?);
    let packed = rec.value.split_off(WORDS + 1);
    rec.value.truncate(words.min(WORDS));
    let mut rows = Rows::new();
    let mut rest = packed.as_slice();
    let take = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        let (n, after) = take_len(rest)?;
        let bytes = after.get(..n)?.to_vec();
        *rest = &after[n..];
        Some(bytes)
    };
    while !rest.is_empty() {
        let sub = take(&mut rest).ok_or_else(cut_short)?;
        let row = take(&mut rest).ok_or_else(cut_short)?;
        rows.insert(sub, row);
    }
    Ok((rec, rows))
}

/// `rec` (its words only) with `rows` packed after them, if they fit.
fn pack(rec: &Record, rows: &Rows) -> Option<Record> {
    if rows.len() > MAX_ROWS || rec.value.len() > WORDS {
        return None;
    }
    let mut value = Vec::with_capacity(WORDS + 1 + rows.iter().map(|(s, r)| s.len() + r.len() + 2).sum::<usize>());
    value.extend_from_slice(&rec.value);
    value.resize(WORDS, 0);
    value.push(rec.value.len() as u8);
    for (sub, row) in rows {
        put_len(&mut value, sub.len());
        value.extend_from_slice(sub);
        put_len(&mut value, row.len());
        value.extend_from_slice(row);
    }
    (value.len() - WORDS - 1 <= MAX_BYTES).then(|| Record { value, ..rec.clone() })
}

/// What a view knows of one key it has read.
struct Held {
    /// The key's record without its rows (`None`: no key).
    own: Option<Record>,
    /// The rows of a packed collection, or of a key not yet created;
    /// `None` when its rows are element rows or it holds no collection.
    rows: Option<Rows>,
    /// Whether the record was written through the view since its rows
    /// last changed: a later change to the rows writes it again.
    written: bool,
}

impl Held {
    fn of(rec: Option<Record>) -> Result<Held, StoreError> {
        Ok(match rec {
            None => Held { own: None, rows: Some(Rows::new()), written: false },
            Some(rec) if is_packed(&rec) => {
                let (own, rows) = unpack(rec)?;
                Held { own: Some(own), rows: Some(rows), written: false }
            }
            Some(rec) => Held { own: Some(rec), rows: None, written: false },
        })
    }
}

/// The keys a view has read, each as the collection code sees it.
#[derive(Default)]
struct Keys(RefCell<HashMap<Vec<u8>, Held>>);

impl Keys {
    /// `key`'s record, words only, read from `store` on first use. A
    /// string or stream is not kept: it is read again when asked again.
    fn get(&self, store: &impl KvStore, key: &[u8]) -> Result<Option<Record>, StoreError> {
        if let Some(held) = self.0.borrow().get(key) {
            return Ok(held.own.clone());
        }
        let rec = store.get(key)?;
        match rec {
            Some(rec) if packable(rec.kind) => {
                let held = Held::of(Some(rec))?;
                let own = held.own.clone();
                self.0.borrow_mut().insert(key.to_vec(), held);
                Ok(own)
            }
            other => Ok(other),
        }
    }

    /// Runs `f` on `key`'s packed rows, or on `None` when its rows are
    /// element rows.
    fn with_rows<R>(
        &self,
        store: &impl KvStore,
        key: &[u8],
        f: impl FnOnce(Option<&mut Held>) -> R,
    ) -> Result<R, StoreError> {
        if !self.0.borrow().contains_key(key) {
            let held = Held::of(store.get(key)?)?;
            self.0.borrow_mut().insert(key.to_vec(), held);
        }
        let mut keys = self.0.borrow_mut();
        let held = keys.get_mut(key).filter(|h| h.rows.is_some());
        Ok(f(held))
    }

    fn elem_get(&self, store: &impl KvStore, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.with_rows(store, key, |h| h.map(|h| h.rows.as_ref().and_then(|r| r.get(sub).cloned())))? {
            Some(row) => Ok(row),
            None => store.elem_get(key, sub),
        }
    }

    fn elem_range(
        &self,
        store: &impl KvStore,
        key: &[u8],
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<ElementRows, StoreError> {
        // At most MAX_ROWS rows, or a new collection's: a walk from the
        // first (which, unlike a map's range, takes any bounds).
        let packed = self.with_rows(store, key, |h| {
            h.and_then(|h| h.rows.as_ref()).map(|rows| {
                let range = rows.iter().filter(|(s, _)| within(s, lower, upper)).take(limit);
                range.map(|(s, r)| (s.clone(), r.clone())).collect()
            })
        })?;
        match packed {
            Some(rows) => Ok(rows),
            None => store.elem_range(key, lower, upper, limit),
        }
    }
}

/// Scanned records as the collection code sees them: words only.
fn scanned(rows: Vec<(Vec<u8>, Record)>) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
    rows.into_iter().map(|(k, rec)| Ok((k, if is_packed(&rec) { unpack(rec)?.0 } else { rec }))).collect()
}

/// The store as a read sees it.
pub(super) struct Packed<'a, S> {
    store: &'a S,
    keys: Keys,
}

impl<'a, S: KvStore> Packed<'a, S> {
    pub(super) fn new(store: &'a S) -> Self {
        Packed { store, keys: Keys::default() }
    }
}

fn read_only() -> StoreError {
    StoreError("a write through a read's view of the store".into())
}

impl<S: KvStore> KvStore for Packed<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        self.keys.get(self.store, key)
    }
    fn put(&mut self, _: &[u8], _: &Record) -> Result<(), StoreError> {
        Err(read_only())
    }
    fn delete(&mut self, _: &[u8]) -> Result<bool, StoreError> {
        Err(read_only())
    }
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        scanned(self.store.scan(after, limit)?)
    }
    fn clear(&mut self) -> Result<u64, StoreError> {
        Err(read_only())
    }
    fn len(&self) -> Result<u64, StoreError> {
        self.store.len()
    }
    fn elem_get(&self, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.keys.elem_get(self.store, key, sub)
    }
    fn elem_put(&mut self, _: &[u8], _: &[u8], _: &[u8]) -> Result<(), StoreError> {
        Err(read_only())
    }
    fn elem_delete(&mut self, _: &[u8], _: &[u8]) -> Result<(), StoreError> {
        Err(read_only())
    }
    fn elem_range(
        &self,
        key: &[u8],
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<ElementRows, StoreError> {
        self.keys.elem_range(self.store, key, lower, upper, limit)
    }
}

/// The store as a write sees it. A packed collection's rows, or a new
/// one's, are held here; storing its header stores them with it, or
/// writes them out as element rows when they have outgrown the record.
pub(super) struct PackedMut<'a, S> {
    store: &'a mut S,
    keys: Keys,
}

impl<'a, S: KvStore> PackedMut<'a, S> {
    pub(super) fn new(store: &'a mut S) -> Self {
        PackedMut { store, keys: Keys::default() }
    }

    /// Stores `rec` (words only) under `key` with the rows the view holds
    /// for it, packed or written out.
    fn store_with_rows(&mut self, key: &[u8], rec: &Record) -> Result<(), StoreError> {
        let mut keys = self.keys.0.borrow_mut();
        let held = keys.get_mut(key).expect("a held key");
        held.own = Some(rec.clone());
        held.written = true;
        let Some(rows) = &held.rows else { return self.store.put(key, rec) };
        if let Some(packed) = pack(rec, rows) {
            return self.store.put(key, &packed);
        }
        // Outgrown: the rows become element rows, for good.
        for (sub, row) in held.rows.take().unwrap_or_default() {
            self.store.elem_put(key, &sub, &row)?;
        }
        self.store.put(key, rec)
    }

    /// After a change to `key`'s held rows: a record already stored
    /// through the view is stored again with them.
    fn rows_changed(&mut self, key: &[u8]) -> Result<(), StoreError> {
        let own = match self.keys.0.borrow().get(key) {
            Some(Held { own: Some(own), written: true, .. }) => own.clone(),
            _ => return Ok(()),
        };
        self.store_with_rows(key, &own)
    }

    fn change_rows(&mut self, key: &[u8], f: impl FnOnce(&mut Rows)) -> Result<bool, StoreError> {
        let done = self.keys.with_rows(&*self.store, key, |h| h.and_then(|h| h.rows.as_mut()).map(f).is_some())?;
        if done {
            self.rows_changed(key)?;
        }
        Ok(done)
    }
}

impl<S: KvStore> KvStore for PackedMut<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        self.keys.get(&*self.store, key)
    }
    fn put(&mut self, key: &[u8], rec: &Record) -> Result<(), StoreError> {
        if is_packed(rec) {
            // Already packed (by a view inside this one): read afresh.
            self.keys.0.borrow_mut().remove(key);
            return self.store.put(key, rec);
        }
        if !packable(rec.kind) {
            // A string or a stream. Rows held for a key that held nothing
            // (a stream made by this write) are its element rows; those of
            // a packed collection the key held go with its record.
            if let Some(held) = self.keys.0.borrow_mut().remove(key) {
                let made_here = held.own.is_none();
                for (sub, row) in held.rows.unwrap_or_default().into_iter().filter(|_| made_here) {
                    self.store.elem_put(key, &sub, &row)?;
                }
            }
            return self.store.put(key, rec);
        }
        self.keys.with_rows(&*self.store, key, |_| ())?;
        self.store_with_rows(key, rec)
    }
    fn delete(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        // What is made under the key next starts packed.
        self.keys.0.borrow_mut().insert(key.to_vec(), Held::of(None)?);
        self.store.delete(key)
    }
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        scanned(self.store.scan(after, limit)?)
    }
    fn clear(&mut self) -> Result<u64, StoreError> {
        self.keys.0.borrow_mut().clear();
        self.store.clear()
    }
    fn len(&self) -> Result<u64, StoreError> {
        self.store.len()
    }
    pass_counts_through!(store);
    fn may_hold_collections(&self, key: &[u8]) -> Result<bool, StoreError> {
        // Rows held here for the key (a packed collection's, read by this
        // write) go with it as element rows would.
        let holds = self.keys.0.borrow().get(key).is_some_and(|h| h.rows.as_ref().is_some_and(|r| !r.is_empty()));
        Ok(holds || self.store.may_hold_collections(key)?)
    }
    fn elem_get(&self, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.keys.elem_get(&*self.store, key, sub)
    }
    fn elem_put(&mut self, key: &[u8], sub: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if self.change_rows(key, |rows| drop(rows.insert(sub.to_vec(), value.to_vec())))? {
            return Ok(());
        }
        self.store.elem_put(key, sub, value)
    }
    fn elem_delete(&mut self, key: &[u8], sub: &[u8]) -> Result<(), StoreError> {
        if self.change_rows(key, |rows| drop(rows.remove(sub)))? {
            return Ok(());
        }
        self.store.elem_delete(key, sub)
    }
    fn elem_range(
        &self,
        key: &[u8],
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<ElementRows, StoreError> {
        self.keys.elem_range(&*self.store, key, lower, upper, limit)
    }
}

#[cfg(test)]
#[path = "packed_tests.rs"]
mod tests;
