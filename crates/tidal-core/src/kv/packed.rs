//! Small hashes kept whole in their header record.
//!
//! A hash of at most [`MAX_FIELDS`] fields whose rows take at most
//! [`MAX_BYTES`] together is *packed*: its rows follow the header's three
//! words in the header record itself instead of being element rows, so a
//! change to it reads and writes one record, as a SET does, and it takes
//! one row of storage. The change that takes it past either limit writes
//! its rows out as element rows, and it keeps them from then on, as Redis
//! never turns a hashtable back into a listpack.
//!
//! ```text
//!  key ──► Record { Hash, value: len ‖ past ‖ next field number ‖ rows }
//!  rows: (LEB128 sub-key length ‖ sub-key ‖ LEB128 row length ‖ row)*, in sub-key order
//! ```
//!
//! The hash code never sees the difference: it runs on [`Packed`] (reads)
//! or [`PackedMut`] (writes), views of the store in which a packed hash's
//! rows are element rows like any other, and its record holds only the
//! words. A hash stored before fields were numbered (two words at most) is
//! never packed.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use super::record::{Kind, Record};
use super::store::{ElementRows, KvStore, StoreError};

/// The most fields a packed hash holds: as many as Redis keeps in a
/// listpack by default.
const MAX_FIELDS: usize = 128;
/// The most bytes a packed hash's rows take.
const MAX_BYTES: usize = 4096;
/// A hash header's own bytes: its size, its past and its next field number.
const WORDS: usize = 24;

/// Whether `rec` holds a packed hash.
pub(super) fn is_packed(rec: &Record) -> bool {
    rec.kind == Kind::Hash && rec.value.len() > WORDS
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

/// The rows of a packed hash's record, in order.
fn rows(payload: &[u8]) -> impl Iterator<Item = Result<(&[u8], &[u8]), StoreError>> {
    let mut rest = payload;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut field = || -> Option<&[u8]> {
            let (n, after) = take_len(rest)?;
            let (bytes, after) = (after.get(..n)?, &after[n..]);
            rest = after;
            Some(bytes)
        };
        let row = field().and_then(|sub| Some((sub, field()?)));
        if row.is_none() {
            rest = &[];
        }
        Some(row.ok_or_else(|| StoreError("a packed hash's rows are cut short".into())))
    })
}

fn encode(rows: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.iter().map(|(s, r)| s.len() + r.len() + 4).sum());
    for (sub, row) in rows {
        put_len(&mut out, sub.len());
        out.extend_from_slice(sub);
        put_len(&mut out, row.len());
        out.extend_from_slice(row);
    }
    out
}

/// `rec` as the hash code sees it: the header words without the rows.
fn words_only(mut rec: Record) -> Record {
    if is_packed(&rec) {
        rec.value.truncate(WORDS);
    }
    rec
}

fn in_range(sub: &[u8], lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    RangeBounds::<[u8]>::contains(&(lower, upper), sub)
}

/// The store as reads of the hash `key` see it.
pub(super) struct Packed<'a, S> {
    store: &'a S,
    key: &'a [u8],
    /// The key's record, read once, without the rows.
    own: Option<Record>,
    /// The hash's packed rows, as its record holds them.
    payload: Option<Vec<u8>>,
}

impl<'a, S: KvStore> Packed<'a, S> {
    pub(super) fn new(store: &'a S, key: &'a [u8]) -> Result<Self, StoreError> {
        let mut own = store.get(key)?;
        let payload = own.as_mut().filter(|rec| is_packed(rec)).map(|rec| rec.value.split_off(WORDS));
        Ok(Packed { store, key, own, payload })
    }

    fn mine(&self, key: &[u8]) -> Option<&[u8]> {
        self.payload.as_deref().filter(|_| key == self.key)
    }
}

fn read_only() -> StoreError {
    StoreError("a write through a read of a packed hash".into())
}

impl<S: KvStore> KvStore for Packed<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        if key == self.key {
            return Ok(self.own.clone());
        }
        self.store.get(key)
    }
    fn put(&mut self, _: &[u8], _: &Record) -> Result<(), StoreError> {
        Err(read_only())
    }
    fn delete(&mut self, _: &[u8]) -> Result<bool, StoreError> {
        Err(read_only())
    }
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        self.store.scan(after, limit)
    }
    fn clear(&mut self) -> Result<u64, StoreError> {
        Err(read_only())
    }
    fn len(&self) -> Result<u64, StoreError> {
        self.store.len()
    }
    fn elem_get(&self, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(payload) = self.mine(key) else { return self.store.elem_get(key, sub) };
        for row in rows(payload) {
            let (s, r) = row?;
            if s == sub {
                return Ok(Some(r.to_vec()));
            }
        }
        Ok(None)
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
        let Some(payload) = self.mine(key) else { return self.store.elem_range(key, lower, upper, limit) };
        let mut out = Vec::new();
        for row in rows(payload) {
            let (s, r) = row?;
            if out.len() == limit {
                break;
            }
            if in_range(s, lower, upper) {
                out.push((s.to_vec(), r.to_vec()));
            }
        }
        Ok(out)
    }
}

/// The store as a change to the hash `key` sees it. A hash that is packed,
/// or does not exist yet, has its rows here until its header is stored:
/// then they go into the record, or out as element rows when they have
/// outgrown it.
pub(super) struct PackedMut<'a, S> {
    store: &'a mut S,
    key: &'a [u8],
    /// The rows of a packed (or new) hash; `None` when its rows are
    /// element rows.
    rows: Option<BTreeMap<Vec<u8>, Vec<u8>>>,
    /// The key's record without the rows, as read when the view was
    /// made; `None` once the key is written through the view.
    own: Option<Option<Record>>,
}

impl<'a, S: KvStore> PackedMut<'a, S> {
    pub(super) fn new(store: &'a mut S, key: &'a [u8]) -> Result<Self, StoreError> {
        let own = store.get(key)?;
        let rows = match &own {
            None => Some(BTreeMap::new()),
            Some(rec) if is_packed(rec) => Some(
                rows(&rec.value[WORDS..])
                    .map(|r| r.map(|(s, v)| (s.to_vec(), v.to_vec())))
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => None,
        };
        Ok(PackedMut { store, key, rows, own: Some(own.map(words_only)) })
    }

    fn mine(&mut self, key: &[u8]) -> Option<&mut BTreeMap<Vec<u8>, Vec<u8>>> {
        self.rows.as_mut().filter(|_| key == self.key)
    }

    fn mine_ref(&self, key: &[u8]) -> Option<&BTreeMap<Vec<u8>, Vec<u8>>> {
        self.rows.as_ref().filter(|_| key == self.key)
    }
}

impl<S: KvStore> KvStore for PackedMut<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        match &self.own {
            Some(own) if key == self.key => Ok(own.clone()),
            _ if key == self.key => Ok(self.store.get(key)?.map(words_only)),
            _ => self.store.get(key),
        }
    }
    fn put(&mut self, key: &[u8], rec: &Record) -> Result<(), StoreError> {
        if key == self.key {
            self.own = None;
        }
        let Some(rows) = self.mine(key) else { return self.store.put(key, rec) };
        let payload = encode(rows);
        let fits = rec.kind == Kind::Hash
            && rec.value.len() == WORDS
            && rows.len() <= MAX_FIELDS
            && payload.len() <= MAX_BYTES;
        if fits {
            let mut packed = rec.clone();
            packed.value.extend_from_slice(&payload);
            return self.store.put(key, &packed);
        }
        // Outgrown (or not a numbered hash): the rows become element rows.
        let rows = self.rows.take().unwrap_or_default();
        for (sub, row) in &rows {
            self.store.elem_put(key, sub, row)?;
        }
        self.store.put(key, rec)
    }
    fn delete(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        if key == self.key {
            // What is created under the key next starts packed.
            self.rows = Some(BTreeMap::new());
            self.own = Some(None);
        }
        self.store.delete(key)
    }
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        self.store.scan(after, limit)
    }
    fn clear(&mut self) -> Result<u64, StoreError> {
        self.store.clear()
    }
    fn len(&self) -> Result<u64, StoreError> {
        self.store.len()
    }
    pass_counts_through!(store);
    fn elem_get(&self, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.mine_ref(key) {
            Some(rows) => Ok(rows.get(sub).cloned()),
            None => self.store.elem_get(key, sub),
        }
    }
    fn elem_put(&mut self, key: &[u8], sub: &[u8], value: &[u8]) -> Result<(), StoreError> {
        match self.mine(key) {
            Some(rows) => {
                rows.insert(sub.to_vec(), value.to_vec());
                Ok(())
            }
            None => self.store.elem_put(key, sub, value),
        }
    }
    fn elem_delete(&mut self, key: &[u8], sub: &[u8]) -> Result<(), StoreError> {
        match self.mine(key) {
            Some(rows) => {
                rows.remove(sub);
                Ok(())
            }
            None => self.store.elem_delete(key, sub),
        }
    }
    fn elem_range(
        &self,
        key: &[u8],
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<ElementRows, StoreError> {
        let Some(rows) = self.mine_ref(key) else { return self.store.elem_range(key, lower, upper, limit) };
        // At most MAX_FIELDS rows, or a new hash's: a walk from the first
        // (which, unlike a map range, takes any bounds).
        let range = rows.iter().filter(|(s, _)| in_range(s, lower, upper)).take(limit);
        Ok(range.map(|(s, r)| (s.clone(), r.clone())).collect())
    }
}
