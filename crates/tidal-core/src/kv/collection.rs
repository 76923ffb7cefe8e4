//! What every collection (hash, set, list, sorted set) shares: its header
//! record, the type check that gives `WRONGTYPE`, and deleting, copying
//! and renaming it together with its element rows.
//!
//! ```text
//!  key ──► Record { kind, expiry, version, value: len(u64 BE) ‖ extra }   the header
//!  key ─┬─► element row sub₁ ─► bytes                                     one per field,
//!       └─► element row sub₂ ─► bytes                                     member, position
//! ```
//!
//! A small collection (not a stream) keeps its rows inside the header
//! record instead (see [`super::packed`]); the engine runs every command
//! on a view of the store that shows them as element rows.
//!
//! The header is rewritten by every change to the collection, so its
//! version (what WATCH compares) moves whenever an element does. A
//! collection never stays empty: the change that removes its last element
//! deletes the header too, as Redis deletes an empty collection.

use std::ops::Bound;

use super::record::{Kind, Record};
use super::reply::Reply;
use super::store::{ElementRows, KvStore, StoreError};

/// Unwrap a typed open ([`open`], [`open_for_write`]), or return its
/// `WRONGTYPE` reply from the calling op.
macro_rules! typed {
    ($e:expr) => {
        match $e {
            Ok(h) => h,
            Err(reply) => return Ok(reply),
        }
    };
}

/// In a store that wraps another (`self.$inner`), the [`KvStore`] methods
/// that count what was written, passed through to it.
macro_rules! pass_counts_through {
    ($inner:ident) => {
        fn writes(&self) -> u64 {
            self.$inner.writes()
        }
        fn discount_writes(&mut self, mark: u64) {
            self.$inner.discount_writes(mark);
        }
        fn count_changes(&mut self, n: u64) {
            self.$inner.count_changes(n);
        }
        fn changes(&self) -> u64 {
            self.$inner.changes()
        }
    };
}

/// How many element rows are read from the store at a time.
pub(super) const BATCH: usize = 512;

/// Redis' text for an operation on a key of another type.
pub fn wrong_type() -> Reply {
    Reply::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into())
}

/// A collection's header: its length, the kind-specific word after it
/// (a list's head position, a set's or a hash's or sorted set's past; 0
/// when there is none) and, for a hash, the insertion count its fields
/// are numbered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    pub rec: Record,
    pub len: u64,
    pub extra: i64,
    /// A hash's next field number (see [`super::hash`]), in a third word;
    /// `None` for a hash stored before fields were numbered, whose rows
    /// hold bare values, and for the other kinds.
    pub order: Option<u64>,
    /// A sorted set kept without its by-score rows while it is small (see
    /// [`super::zset`]): a third word of 1. A sorted set's header without
    /// it (every one stored before small sets went without) has them.
    pub unindexed: bool,
}

impl Header {
    pub fn new(kind: Kind) -> Header {
        let order = (kind == Kind::Hash).then_some(0);
        let unindexed = kind == Kind::ZSet;
        Header { rec: Record::collection(kind, Vec::new(), None), len: 0, extra: 0, order, unindexed }
    }

    pub fn from_record(rec: Record) -> Header {
        let (len, extra, order, unindexed) = (len_of(&rec), extra_of(&rec), order_of(&rec), unindexed(&rec));
        Header { rec, len, extra, order, unindexed }
    }

    fn record(&self) -> Record {
        let mut value = self.len.to_be_bytes().to_vec();
        if self.extra != 0 || self.order.is_some() || self.unindexed {
            value.extend_from_slice(&self.extra.to_be_bytes());
        }
        if let Some(next) = self.order {
            value.extend_from_slice(&next.to_be_bytes());
        } else if self.unindexed {
            value.extend_from_slice(&1u64.to_be_bytes());
        }
        Record { value, ..self.rec.clone() }
    }

    /// Store the header after a change, or delete it when the collection
    /// is now empty (its element rows are already gone).
    pub fn save(&self, store: &mut impl KvStore, key: &[u8]) -> Result<(), StoreError> {
        if self.len == 0 {
            store.delete(key).map(drop)
        } else {
            store.put(key, &self.record())
        }
    }
}

/// The 8-byte big-endian word at `at` of a header's or row's value, 0
/// when absent.
pub(super) fn word(value: &[u8], at: usize) -> u64 {
    value.get(at..at + 8).map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

/// The length stored in a collection's header record.
pub(super) fn len_of(rec: &Record) -> u64 {
    word(&rec.value, 0)
}

/// The kind-specific word stored in a collection's header record.
pub(super) fn extra_of(rec: &Record) -> i64 {
    word(&rec.value, 8) as i64
}

/// A hash header's next field number, if its fields are numbered.
pub(super) fn order_of(rec: &Record) -> Option<u64> {
    (rec.kind == Kind::Hash && rec.value.len() >= 24).then(|| word(&rec.value, 16))
}

/// Whether `rec` is a sorted set's header kept without its by-score rows.
pub(super) fn unindexed(rec: &Record) -> bool {
    rec.kind == Kind::ZSet && rec.value.len() >= 24 && word(&rec.value, 16) == 1
}

/// What a hash's or sorted set's header keeps of its past, in the word
/// after its size: the most entries it held (the low 32 bits) and the
/// longest field, value or member written to it (the next 31), each
/// saturating. Redis leaves `listpack` for good once either passes its
/// threshold; OBJECT ENCODING reads these to do the same. A header
/// without the word (written before it existed) has no past: its encoding
/// follows what it holds now.
pub(super) struct Past;

impl Past {
    const ENTRIES: i64 = 0xffff_ffff;

    /// Note `h`'s size now, and `longest` just written to it.
    pub(super) fn note(h: &mut Header, longest: usize) {
        let most = (h.extra & Self::ENTRIES).max(h.len.min(u64::from(u32::MAX)) as i64);
        let long = (h.extra >> 32).max(longest.min(i32::MAX as usize) as i64);
        h.extra = long << 32 | most;
    }

    /// The most entries `rec`'s collection held, and its longest element.
    pub(super) fn of(rec: &Record) -> (u64, u64) {
        let extra = extra_of(rec);
        ((extra & Self::ENTRIES) as u64, (extra >> 32) as u64)
    }
}

/// `key`'s live header if it holds a `kind`, `None` if it does not exist,
/// or the `WRONGTYPE` reply.
pub(super) fn open(
    store: &impl KvStore,
    key: &[u8],
    now_ms: u64,
    kind: Kind,
) -> Result<Result<Option<Header>, Reply>, StoreError> {
    Ok(match live(store, key, now_ms)? {
        Some(r) if r.kind != kind => Err(wrong_type()),
        other => Ok(other.map(Header::from_record)),
    })
}

/// What a stored row costs beyond its bytes, roughly: its entries in the
/// in-memory layer or the table's B-tree, and their bookkeeping.
const ROW_OVERHEAD: u64 = 48;

/// MEMORY USAGE of `key`, holding `rec`: its record and its element rows,
/// those beyond the first `samples` (0: all) estimated from their mean.
pub(super) fn memory_usage(store: &impl KvStore, key: &[u8], rec: Record, samples: u64) -> Result<u64, StoreError> {
    let own = ROW_OVERHEAD + key.len() as u64 + rec.value.len() as u64;
    if rec.is_string() {
        return Ok(own);
    }
    // A sorted set with its score index keeps two rows per member.
    let per_element = if rec.kind == Kind::ZSet && !unindexed(&rec) { 2 } else { 1 };
    let total = Header::from_record(rec).len * per_element;
    let n = if samples == 0 { total } else { samples.min(total) };
    let rows = store.elem_range(key, Bound::Unbounded, Bound::Unbounded, n as usize)?;
    if rows.is_empty() {
        return Ok(own);
    }
    let sampled: u64 = rows.iter().map(|(sub, v)| ROW_OVERHEAD + (key.len() + sub.len() + v.len()) as u64).sum();
    Ok(own + sampled * total / rows.len() as u64)
}

/// The longest field, member or value among the first `rows` element rows
/// of `key`: each sub-key less its first `prefix` bytes, and each value
/// as long as `value_len` says (0 to leave values out).
pub(super) fn longest(
    store: &impl KvStore,
    key: &[u8],
    rows: u64,
    prefix: usize,
    value_len: impl Fn(&[u8]) -> usize,
) -> Result<u64, StoreError> {
    let rows = store.elem_range(key, Bound::Unbounded, Bound::Unbounded, rows as usize)?;
    Ok(rows.iter().map(|(sub, v)| sub.len().saturating_sub(prefix).max(value_len(v)) as u64).max().unwrap_or(0))
}

/// Like [`open`] for a write: an expired key found is deleted first, and
/// a missing one is a new empty header.
pub(super) fn open_for_write(
    store: &mut impl KvStore,
    key: &[u8],
    now_ms: u64,
    kind: Kind,
) -> Result<Result<Header, Reply>, StoreError> {
    Ok(match live_for_write(store, key, now_ms)? {
        Some(r) if r.kind != kind => Err(wrong_type()),
        Some(r) => Ok(Header::from_record(r)),
        None => Ok(Header::new(kind)),
    })
}

/// The live record under `key`, of any kind.
pub(super) fn live(store: &impl KvStore, key: &[u8], now_ms: u64) -> Result<Option<Record>, StoreError> {
    Ok(store.get(key)?.filter(|r| r.is_live(now_ms)))
}

/// Like [`live`], but deletes an expired record it finds (with its element
/// rows), so writes leave no dead data behind.
pub(super) fn live_for_write(store: &mut impl KvStore, key: &[u8], now_ms: u64) -> Result<Option<Record>, StoreError> {
    match store.get(key)? {
        Some(r) if r.is_live(now_ms) => Ok(Some(r)),
        Some(r) => {
            // Deleting an expired key is no change of the op's: Redis
            // counts none for it.
            let mark = store.writes();
            remove(store, key, &r)?;
            store.discount_writes(mark);
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Delete `key`, whose stored record is `rec`, with its element rows.
pub(super) fn remove(store: &mut impl KvStore, key: &[u8], rec: &Record) -> Result<(), StoreError> {
    if !rec.is_string() {
        clear_elements(store, key)?;
    }
    store.delete(key).map(drop)
}

/// Delete whatever `key` holds, expired or not; whether it held a live value.
pub(super) fn delete_key(store: &mut impl KvStore, key: &[u8], now_ms: u64) -> Result<bool, StoreError> {
    match store.get(key)? {
        Some(r) => {
            remove(store, key, &r)?;
            Ok(r.is_live(now_ms))
        }
        None => Ok(false),
    }
}

/// Store `rec` under `key`, replacing whatever it held (a collection's
/// element rows go with it).
pub(super) fn overwrite(store: &mut impl KvStore, key: &[u8], rec: &Record) -> Result<(), StoreError> {
    // Where no collection has element rows the lookup is skipped (a
    // plain SET stays blind).
    if store.may_hold_collections(key)? && store.get(key)?.is_some_and(|old| !old.is_string()) {
        clear_elements(store, key)?;
    }
    store.put(key, rec)
}

/// Up to [`BATCH`] element rows of `key` after the sub-key `after` (from
/// the first with `None`).
fn page(store: &impl KvStore, key: &[u8], after: Option<&[u8]>) -> Result<ElementRows, StoreError> {
    store.elem_range(key, after.map_or(Bound::Unbounded, Bound::Excluded), Bound::Unbounded, BATCH)
}

/// Every element row of `key`, a batch at a time.
pub(super) fn for_each_element(
    store: &impl KvStore,
    key: &[u8],
    mut f: impl FnMut(&[u8], &[u8]),
) -> Result<(), StoreError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let rows = page(store, key, after.as_deref())?;
        for (sub, v) in &rows {
            f(sub, v);
        }
        if rows.len() < BATCH {
            return Ok(());
        }
        after = rows.into_iter().last().map(|(sub, _)| sub);
    }
}

/// Every element row of `key`, in sub-key order.
pub(super) fn elements(store: &impl KvStore, key: &[u8]) -> Result<ElementRows, StoreError> {
    let mut out = Vec::new();
    for_each_element(store, key, |sub, v| out.push((sub.to_vec(), v.to_vec())))?;
    Ok(out)
}

fn clear_elements(store: &mut impl KvStore, key: &[u8]) -> Result<(), StoreError> {
    // Not for_each_element: the rows are deleted as they are read.
    let mut after: Option<Vec<u8>> = None;
    loop {
        let rows = page(&*store, key, after.as_deref())?;
        for (sub, _) in &rows {
            store.elem_delete(key, sub)?;
        }
        if rows.len() < BATCH {
            return Ok(());
        }
        after = rows.into_iter().last().map(|(sub, _)| sub);
    }
}

/// Copy `from` (record `rec`) to `to` within one store, element rows
/// included; `to` is replaced.
pub(super) fn copy_key(store: &mut impl KvStore, from: &[u8], to: &[u8], rec: &Record) -> Result<(), StoreError> {
    if let Some(old) = store.get(to)? {
        remove(store, to, &old)?;
    }
    if !rec.is_string() {
        for (sub, v) in elements(store, from)? {
            store.elem_put(to, &sub, &v)?;
        }
    }
    store.put(to, rec)
}

/// Where a hash field or set member is stored among its collection's rows:
/// a 64-bit digest of it, then the member itself. Rows are thus in digest
/// order, which neither inserts nor deletes disturb, so a scan cursor can
/// be the digest to resume from (a plain number, as Redis cursors are),
/// and a random digest is a random place to pick from.
pub(super) fn member_sub(member: &[u8]) -> Vec<u8> {
    let mut sub = Vec::with_capacity(8 + member.len());
    sub.extend_from_slice(&digest(member).to_be_bytes());
    sub.extend_from_slice(member);
    sub
}

/// The member a [`member_sub`] names.
pub(super) fn member_of(sub: &[u8]) -> &[u8] {
    sub.get(8..).unwrap_or_default()
}

fn digest_of(sub: &[u8]) -> u64 {
    sub.get(..8).map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

/// FNV-1a, then splitmix64's finalizer to spread it. Stored row order
/// depends on it: it must never change.
fn digest(member: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in member {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// One page of HSCAN/SSCAN from `cursor` (0 = the start): at least `count`
/// rows when that many remain, never splitting rows of one digest, and the
/// cursor to continue from (0 at the end). Every member present for the
/// whole scan is returned at least once.
pub(super) fn scan_members(
    store: &impl KvStore,
    key: &[u8],
    cursor: u64,
    count: usize,
) -> Result<(u64, ElementRows), StoreError> {
    let from = cursor.to_be_bytes();
    let mut rows = store.elem_range(key, Bound::Included(&from[..]), Bound::Unbounded, count.max(1))?;
    let Some(last) = rows.last().map(|(sub, _)| digest_of(sub)) else {
        return Ok((0, rows));
    };
    // The rest of the last digest's rows, so the next page starts clean.
    let after = rows.last().map(|(sub, _)| sub.clone()).unwrap_or_default();
    let next = last.checked_add(1);
    let upper = next.map(u64::to_be_bytes);
    let tail = match &upper {
        Some(u) => store.elem_range(key, Bound::Excluded(&after[..]), Bound::Excluded(&u[..]), usize::MAX)?,
        None => store.elem_range(key, Bound::Excluded(&after[..]), Bound::Unbounded, usize::MAX)?,
    };
    rows.extend(tail);
    let more = match &upper {
        Some(u) => !store.elem_range(key, Bound::Included(&u[..]), Bound::Unbounded, 1)?.is_empty(),
        None => false,
    };
    Ok((if more { next.unwrap_or(0) } else { 0 }, rows))
}

/// Collections up to this size are sampled exactly uniformly (by
/// position); larger ones from random digests.
const EXACT_PICK: u64 = 1024;

/// `n` rows of `key` (whose header says `len`) chosen with `seed`:
/// distinct ones when `distinct` (at most `len`), otherwise with
/// repetition. Deterministic in the seed, so a write (SPOP) picks the same
/// rows on every replica.
pub(super) fn pick(
    store: &impl KvStore,
    key: &[u8],
    len: u64,
    n: u64,
    distinct: bool,
    seed: u64,
) -> Result<ElementRows, StoreError> {
    use crate::dice::Dice;
    if len == 0 || n == 0 {
        return Ok(Vec::new());
    }
    let mut dice = Dice::new(seed);
    if distinct && n >= len {
        return elements(store, key);
    }
    if len <= EXACT_PICK {
        let all = elements(store, key)?;
        let len = all.len() as u64;
        if distinct {
            // A partial Fisher-Yates shuffle of the positions.
            let mut idx: Vec<usize> = (0..all.len()).collect();
            for i in 0..n.min(len) as usize {
                let j = i + dice.below(len - i as u64) as usize;
                idx.swap(i, j);
            }
            return Ok(idx[..n.min(len) as usize].iter().map(|&i| all[i].clone()).collect());
        }
        return Ok((0..n).map(|_| all[dice.below(len) as usize].clone()).collect());
    }
    // The first row at or after a random digest, wrapping to the start.
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut tries = 0u64;
    while (out.len() as u64) < n && tries < n.saturating_mul(4) + 64 {
        tries += 1;
        let at = dice.roll().to_be_bytes();
        let mut row = store.elem_range(key, Bound::Included(&at[..]), Bound::Unbounded, 1)?;
        if row.is_empty() {
            row = store.elem_range(key, Bound::Unbounded, Bound::Unbounded, 1)?;
        }
        let Some(row) = row.pop() else { break };
        if !distinct || seen.insert(row.0.clone()) {
            out.push(row);
        }
    }
    if (out.len() as u64) < n {
        // Unlucky draws: fill up in order with rows not taken yet.
        for_each_element(store, key, |sub, v| {
            if (out.len() as u64) < n && seen.insert(sub.to_vec()) {
                out.push((sub.to_vec(), v.to_vec()));
            }
        })?;
    }
    Ok(out)
}
