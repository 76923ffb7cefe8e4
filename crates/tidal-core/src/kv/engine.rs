//! Executes ops against a [`KvStore`] with Redis 7 string semantics.
//!
//! ```text
//!  Raft log entry (op, now_ms) ──► apply(op, now_ms, &mut store) ──► Reply
//!  read request (op)  + clock ──► read(op, now_ms, &store)       ──► Reply
//! ```
//!
//! Both functions are pure over the store: the same op, time and contents
//! give the same reply and the same new contents on every replica. Expiry
//! is lazy: a record past its deadline reads as absent, and a write that
//! finds one deletes it first, as Redis does on key lookup.
//!
//! Data-dependent Redis errors (`ERR value is not an integer ...`) are
//! returned as `Ok(Reply::Error(..))`; `Err` is reserved for storage failure.

use super::changes::changes;
use super::collection::{self, copy_key, delete_key, live, live_for_write, overwrite, remove, wrong_type};
use super::config::{HASH_ENTRIES, HASH_VALUE, SET_ENTRIES, ZSET_ENTRIES, ZSET_VALUE};
use super::glob::glob_match;
use super::integer::parse_i64;
use super::long_double::{increment_error, LongDouble};
use super::op::{ExpireAt, ExpireCond, Expiry, GetExExpiry, ObjectInfo, ReadOp, SetCond, TxOp, Watch, WriteOp};
use super::packed::{Packed, PackedMut};
use super::record::{Kind, Record};
use super::reply::Reply;
use super::scan_page::ScanPage;
use super::store::{KvStore, StoreError};
use super::{bitfield, bits};
use super::{hash, list, rdb, set, sort, stream, zset};

/// Redis' default `proto-max-bulk-len`: the largest string SETRANGE and
/// APPEND may build.
pub const MAX_STRING_LEN: u64 = 512 * 1024 * 1024;

/// How many records whole-keyspace reads pull from the store at a time.
const BATCH: usize = 1024;

/// A live record that must be a string: another kind returns `WRONGTYPE`
/// from the calling op.
macro_rules! string {
    ($rec:expr) => {
        match $rec {
            Some(r) if !r.is_string() => return Ok(wrong_type()),
            other => other,
        }
    };
}

/// Applies a write at the time stamped in its log entry, and counts its
/// changes in `store` (a transaction's or script's, each of its writes).
pub fn apply(op: &WriteOp, now_ms: u64, store: &mut impl KvStore) -> Result<Reply, StoreError> {
    match op {
        WriteOp::Exec { watch, ops } => {
            if !watch_holds(watch.as_ref(), store, now_ms)? {
                return Ok(Reply::NilArray);
            }
            return Ok(Reply::Array(exec(ops, now_ms, store)?));
        }
        WriteOp::Script { watch, at_ms, ops } => {
            if !watch_holds(Some(watch), store, *at_ms)? {
                return Ok(Reply::NilArray);
            }
            for op in ops {
                apply(op, *at_ms, store)?;
            }
            return Ok(Reply::Int(ops.len() as i64));
        }
        _ => {}
    }
    let before = store.writes();
    let reply = apply_op(op, now_ms, &mut PackedMut::new(store))?;
    if let Some(n) = changes(op, &reply, store.writes() != before) {
        store.count_changes(n);
    }
    Ok(reply)
}

fn apply_op(op: &WriteOp, now_ms: u64, store: &mut impl KvStore) -> Result<Reply, StoreError> {
    match op {
        WriteOp::Set { key, value, expiry, cond, get } => set(store, now_ms, key, value, *expiry, *cond, *get),
        WriteOp::Del { keys } => {
            let mut removed = 0;
            for key in keys {
                if delete_key(store, key, now_ms)? {
                    removed += 1;
                }
            }
            Ok(Reply::Int(removed))
        }
        WriteOp::IncrBy { key, delta } => incr_by(store, now_ms, key, *delta),
        WriteOp::IncrByFloat { key, delta } => incr_by_float(store, now_ms, key, delta),
        WriteOp::Append { key, value } => {
            let Some(mut rec) = string!(live_for_write(store, key, now_ms)?) else {
                store.put(key, &Record::new(value.clone()))?;
                return Ok(Reply::Int(value.len() as i64));
            };
            if rec.value.len() as u64 + value.len() as u64 > MAX_STRING_LEN {
                return Ok(too_long());
            }
            rec.value.extend_from_slice(value);
            rec.raw = true;
            store.put(key, &rec)?;
            Ok(Reply::Int(rec.value.len() as i64))
        }
        WriteOp::SetRange { key, offset, value } => set_range(store, now_ms, key, *offset, value),
        WriteOp::GetDel { key } => match string!(live_for_write(store, key, now_ms)?) {
            Some(rec) => {
                store.delete(key)?;
                Ok(Reply::Bulk(rec.value))
            }
            None => Ok(Reply::Nil),
        },
        WriteOp::GetEx { key, expiry } => get_ex(store, now_ms, key, *expiry),
        WriteOp::Expire { key, at, cond } => expire(store, now_ms, key, *at, *cond),
        WriteOp::Persist { key } => match live_for_write(store, key, now_ms)? {
            Some(mut rec) if rec.expire_at_ms.is_some() => {
                rec.expire_at_ms = None;
                store.put(key, &rec)?;
                Ok(Reply::Int(1))
            }
            _ => Ok(Reply::Int(0)),
        },
        WriteOp::MSet { pairs } => {
            for (key, value) in pairs {
                overwrite(store, key, &Record::new(value.clone()))?;
            }
            Ok(Reply::Ok)
        }
        WriteOp::MSetNx { pairs } => {
            for (key, _) in pairs {
                if live_for_write(store, key, now_ms)?.is_some() {
                    return Ok(Reply::Int(0));
                }
            }
            // None of the keys exists: nothing to replace.
            for (key, value) in pairs {
                store.put(key, &Record::new(value.clone()))?;
            }
            Ok(Reply::Int(1))
        }
        WriteOp::Rename { from, to, nx } => rename(store, now_ms, from, to, *nx),
        WriteOp::Flush => {
            store.clear()?;
            Ok(Reply::Ok)
        }
        WriteOp::SetBit { key, offset, bit } => {
            let found = string!(live_for_write(store, key, now_ms)?);
            let (mut rec, created) = bit_target(found);
            let len = rec.value.len();
            let old = bits::set_bit(&mut rec.value, *offset, *bit);
            let changed = created || rec.value.len() != len || old != u8::from(*bit);
            store_bits(store, key, rec, changed)?;
            store.count_changes(u64::from(changed));
            Ok(Reply::Int(i64::from(old)))
        }
        WriteOp::BitField { key, ops } => {
            let found = string!(live_for_write(store, key, now_ms)?);
            let (mut rec, created) = bit_target(found);
            let len = rec.value.len();
            bitfield::grow_for_writes(&mut rec.value, ops);
            let grown = created || rec.value.len() != len;
            let (replies, changed) = bitfield::run(&mut rec.value, ops);
            // As Redis counts them: each write that changed its field, or
            // every write when the string was made or grown.
            let changes = if grown { bitfield::writes_done(ops, &replies) } else { changed };
            store_bits(store, key, rec, grown || changes > 0)?;
            store.count_changes(changes);
            Ok(Reply::Array(replies))
        }
        WriteOp::BitOp { op, dest, keys } => {
            let mut sources = Vec::with_capacity(keys.len());
            for key in keys {
                sources.push(string!(live(store, key, now_ms)?).map(|r| r.value).unwrap_or_default());
            }
            let result = bits::bit_op(*op, &sources);
            let len = result.len() as i64;
            if result.is_empty() {
                delete_key(store, dest, now_ms)?;
            } else {
                overwrite(store, dest, &Record::new(result).made_raw())?;
            }
            Ok(Reply::Int(len))
        }
        WriteOp::Copy { from, to, replace } => {
            let Some(rec) = live(store, from, now_ms)? else { return Ok(Reply::Int(0)) };
            if !replace && live_for_write(store, to, now_ms)?.is_some() {
                return Ok(Reply::Int(0));
            }
            copy_key(store, from, to, &rec)?;
            Ok(Reply::Int(1))
        }
        WriteOp::Exec { .. } | WriteOp::Script { .. } => unreachable!("applied by apply"),
        WriteOp::Hash { key, op } => hash::apply(store, key, op, now_ms),
        WriteOp::Members { key, op } => set::apply(store, key, op, now_ms),
        WriteOp::Sort { key, dest, spec } => sort::store(store, key, dest, spec, now_ms),
        WriteOp::Reap { keys } => {
            let mut reaped = 0;
            for key in keys {
                if let Some(rec) = store.get(key)?.filter(|r| !r.is_live(now_ms)) {
                    remove(store, key, &rec)?;
                    reaped += 1;
                }
            }
            Ok(Reply::Int(reaped))
        }
        WriteOp::List { key, op } => list::apply(store, key, op, now_ms),
        WriteOp::ZSet { key, op } => zset::apply(store, key, op, now_ms),
        WriteOp::Stream { key, op } => stream::apply(store, key, op, now_ms),
        WriteOp::RestorePayload { key, replace, load } => rdb::restore(store, key, *replace, load, now_ms),
        WriteOp::Restore { key, record } => {
            match record {
                Some(rec) if rec.is_live(now_ms) => overwrite(store, key, rec)?,
                _ => {
                    delete_key(store, key, now_ms)?;
                }
            }
            Ok(Reply::Ok)
        }
    }
}

/// Runs a transaction's ops in order at the time stamped in its log
/// entry; each read sees the writes before it.
pub fn exec(ops: &[TxOp], now_ms: u64, store: &mut impl KvStore) -> Result<Vec<Reply>, StoreError> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(match op {
            TxOp::Write(w) => apply(w, now_ms, store)?,
            TxOp::Read(r) => read(r, now_ms, &*store)?,
        });
    }
    Ok(out)
}

/// The string SETBIT or BITFIELD work on, and whether they make it.
fn bit_target(found: Option<Record>) -> (Record, bool) {
    match found {
        Some(rec) => (rec, false),
        None => (Record::new(Vec::new()), true),
    }
}

/// Stores a string SETBIT or BITFIELD worked on, if they changed it. As
/// in Redis, a bit command makes its string `raw` even when it changes no
/// bit; only that is stored then.
fn store_bits(store: &mut impl KvStore, key: &[u8], mut rec: Record, changed: bool) -> Result<(), StoreError> {
    if changed || !rec.raw {
        rec.raw = true;
        store.put(key, &rec)?;
    }
    Ok(())
}

/// Answers a read from one consistent view at `now_ms`.
pub fn read(op: &ReadOp, now_ms: u64, store: &impl KvStore) -> Result<Reply, StoreError> {
    read_op(op, now_ms, &Packed::new(store))
}

fn read_op(op: &ReadOp, now_ms: u64, store: &impl KvStore) -> Result<Reply, StoreError> {
    match op {
        ReadOp::Get { key } => Ok(Reply::bulk_or_nil(string!(live(store, key, now_ms)?).map(|r| r.value))),
        ReadOp::MGet { keys } => {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                // MGET answers nil for a key of another type.
                let value = live(store, key, now_ms)?.filter(Record::is_string).map(|r| r.value);
                out.push(Reply::bulk_or_nil(value));
            }
            Ok(Reply::Array(out))
        }
        ReadOp::Exists { keys } | ReadOp::Touch { keys } => {
            let mut n = 0;
            for key in keys {
                if live(store, key, now_ms)?.is_some() {
                    n += 1;
                }
            }
            Ok(Reply::Int(n))
        }
        ReadOp::Ttl { key, millis } => Ok(Reply::Int(match live(store, key, now_ms)? {
            None => -2,
            Some(Record { expire_at_ms: None, .. }) => -1,
            Some(Record { expire_at_ms: Some(at), .. }) => {
                let left = at.saturating_sub(now_ms);
                let left = if *millis { left } else { (left + 500) / 1000 };
                i64::try_from(left).unwrap_or(i64::MAX)
            }
        })),
        ReadOp::ExpireTime { key, millis } => Ok(Reply::Int(match live(store, key, now_ms)? {
            None => -2,
            Some(Record { expire_at_ms: None, .. }) => -1,
            Some(Record { expire_at_ms: Some(at), .. }) => {
                let at = if *millis { at } else { at / 1000 };
                i64::try_from(at).unwrap_or(i64::MAX)
            }
        })),
        ReadOp::Strlen { key } => {
            Ok(Reply::Int(string!(live(store, key, now_ms)?).map_or(0, |r| r.value.len() as i64)))
        }
        ReadOp::GetRange { key, start, end } => {
            let value = string!(live(store, key, now_ms)?).map(|r| r.value).unwrap_or_default();
            Ok(Reply::Bulk(get_range(&value, *start, *end).to_vec()))
        }
        ReadOp::Type { key } => Ok(Reply::simple(live(store, key, now_ms)?.map_or("none", |r| r.kind.name()))),
        ReadOp::DumpPayload { key } => Ok(match live(store, key, now_ms)? {
            Some(rec) => Reply::Bulk(rdb::dump(store, key, rec)?),
            None => Reply::Nil,
        }),
        ReadOp::Dump { key } => Ok(match live(store, key, now_ms)? {
            Some(r) if !r.is_string() => Reply::err(format!(
                "a {} cannot move between PRGs as one record: RENAME it within its slot (give both keys a common \
                 hash tag, e.g. {{user1}}:a and {{user1}}:b)",
                r.kind.name()
            )),
            other => Reply::bulk_or_nil(other.map(|r| r.encode())),
        }),
        // Keys stored, those expired but not yet reaped included, as Redis
        // counts them: the store keeps the count, no key is read.
        ReadOp::DbSize => Ok(Reply::Int(store.len()? as i64)),
        ReadOp::Changes => Ok(Reply::Int(store.changes() as i64)),
        ReadOp::Scan { slots, after, count, pattern, kind } => {
            // The store holds the slots to scan, and only them.
            let count = (*count).max(1);
            let batch = store.scan(after.as_deref(), count)?;
            let next_after = if batch.len() == count { batch.last().map(|(k, _)| k.clone()) } else { None };
            let next_slot = slots.end;
            let keys = batch
                .into_iter()
                .filter(|(k, r)| {
                    r.is_live(now_ms)
                        && kind.is_none_or(|want| r.kind == want)
                        && pattern.as_ref().is_none_or(|p| glob_match(p, k))
                })
                .map(|(k, _)| k)
                .collect();
            Ok(ScanPage { next_after, next_slot, keys }.to_reply())
        }
        ReadOp::MemoryUsage { key, samples } => {
            let Some(rec) = live(store, key, now_ms)? else { return Ok(Reply::Nil) };
            Ok(Reply::Int(collection::memory_usage(store, key, rec, *samples)? as i64))
        }
        ReadOp::BitField { key, ops } => {
            let mut value = string!(live(store, key, now_ms)?).map(|r| r.value).unwrap_or_default();
            Ok(Reply::Array(bitfield::run(&mut value, ops).0))
        }
        ReadOp::GetBit { key, offset } => {
            let rec = string!(live(store, key, now_ms)?);
            Ok(Reply::Int(i64::from(rec.map_or(0, |r| bits::get_bit(&r.value, *offset)))))
        }
        ReadOp::BitCount { key, range } => {
            Ok(Reply::Int(string!(live(store, key, now_ms)?).map_or(0, |r| bits::bit_count(&r.value, *range))))
        }
        ReadOp::BitPos { key, bit, range } => {
            let rec = string!(live(store, key, now_ms)?);
            Ok(Reply::Int(bits::bit_pos(rec.as_ref().map(|r| r.value.as_slice()), *bit, *range)))
        }
        ReadOp::Lcs { a, b, mode } => {
            let (a, b) = (live(store, a, now_ms)?, live(store, b, now_ms)?);
            if [&a, &b].into_iter().flatten().any(|r| !r.is_string()) {
                return Ok(Reply::err("The specified keys must contain string values"));
            }
            let (a, b) = (a.map(|r| r.value).unwrap_or_default(), b.map(|r| r.value).unwrap_or_default());
            Ok(bits::lcs(&a, &b, *mode))
        }
        ReadOp::Object { key, what } => {
            let Some(rec) = live(store, key, now_ms)? else { return Ok(Reply::Nil) };
            Ok(match what {
                ObjectInfo::Encoding { limits } => Reply::bulk(encoding(store, key, &rec, limits)?),
                // Redis tracks access frequency only under an LFU policy;
                // tidal keeps neither access counts nor times.
                ObjectInfo::Freq => Reply::err(
                    "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when \
                     switching between policies at runtime LRU and LFU data will take some time to adjust.",
                ),
                ObjectInfo::IdleTime => Reply::Int(0),
                // tidal shares no values between keys (Redis shares small
                // integers and answers 2147483647 for them).
                ObjectInfo::RefCount => Reply::Int(1),
            })
        }
        ReadOp::RandomKey { seed } => {
            // The first live key after a key the seed makes up, or from the
            // start when there is none after it.
            let from = seed.to_be_bytes();
            for after in [Some(&from[..]), None] {
                let page = store.scan(after, BATCH)?;
                if let Some((k, _)) = page.into_iter().find(|(_, r)| r.is_live(now_ms)) {
                    return Ok(Reply::Bulk(k));
                }
            }
            Ok(Reply::Nil)
        }
        ReadOp::Hash { key, op } => hash::read(store, key, op, now_ms),
        ReadOp::Members { key, op } => set::read(store, key, op, now_ms),
        ReadOp::Sort { key, spec } => sort::read(store, key, spec, now_ms),
        ReadOp::List { key, op } => list::read(store, key, op, now_ms),
        ReadOp::ZSet { key, op } => zset::read(store, key, op, now_ms),
        ReadOp::Stream { key, op } => stream::read(store, key, op, now_ms),
        ReadOp::Versions { keys } => {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let v = version_of(store, key, now_ms)?;
                out.push(Reply::Int(i64::try_from(v).unwrap_or(i64::MAX)));
            }
            Ok(Reply::Array(out))
        }
        ReadOp::Keys { pattern } => {
            let all = pattern.as_slice() == b"*";
            let mut keys = Vec::new();
            for_each_live(store, now_ms, |k| {
                if all || glob_match(pattern, k) {
                    keys.push(Reply::Bulk(k.to_vec()));
                }
            })?;
            Ok(Reply::Array(keys))
        }
    }
}

/// The encoding Redis 7.0 would report for `rec` now under the
/// thresholds `limits` (CONFIG's hash, set and sorted-set ones, in
/// [`super::encoding_defaults`]'s order): from the collection's size and
/// its longest field, value or member. A set that once held too many
/// members, or one that is not an integer, stays `hashtable`, as in Redis
/// (see [`set::HighWater`]); so does a hash or sorted set that once held
/// too many entries or too long a one (see [`collection::Past`]).
fn encoding(store: &impl KvStore, key: &[u8], rec: &Record, limits: &[i64]) -> Result<&'static str, StoreError> {
    let limit = |i: usize| limits.get(i).map_or(0, |l| (*l).max(0) as u64);
    let len = collection::len_of(rec);
    Ok(match rec.kind {
        Kind::String if rec.raw => "raw",
        Kind::String => string_encoding(&rec.value),
        Kind::Hash
            if past_fits(rec, limit(HASH_ENTRIES), limit(HASH_VALUE))
                && collection::longest(store, key, len, 8, hash::value_len(rec))? <= limit(HASH_VALUE) =>
        {
            "listpack"
        }
        Kind::ZSet
            if past_fits(rec, limit(ZSET_ENTRIES), limit(ZSET_VALUE))
                && collection::longest(store, key, 2 * len, 9, |_| 0)? <= limit(ZSET_VALUE) =>
        {
            "listpack"
        }
        Kind::Hash => "hashtable",
        Kind::ZSet => "skiplist",
        Kind::Stream => "stream",
        Kind::List => "quicklist",
        Kind::Set
            if len <= limit(SET_ENTRIES)
                && !set::HighWater::left_intset(rec, limit(SET_ENTRIES))
                && set::all_integers(store, key)? =>
        {
            "intset"
        }
        Kind::Set => "hashtable",
    })
}

/// Whether a hash or sorted set never passed Redis's `listpack` limits:
/// `entries` (its size now, or the most it held) and `longest` (its
/// longest element written).
fn past_fits(rec: &Record, entries: u64, longest: u64) -> bool {
    let (most, long) = collection::Past::of(rec);
    collection::len_of(rec).max(most) <= entries && long <= longest
}

/// The encoding Redis would give a string it stored as set: `int` for a
/// canonical 64-bit integer of at most 20 characters, `embstr` up to 44
/// bytes, `raw` beyond.
fn string_encoding(value: &[u8]) -> &'static str {
    // parse_i64 takes only canonical text of at most 20 bytes.
    if parse_i64(value).is_some() {
        "int"
    } else if value.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// Redis GETRANGE on `value`, including its treatment of negative and
/// out-of-range indexes.
pub fn get_range(value: &[u8], start: i64, end: i64) -> &[u8] {
    let len = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        return &[];
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0);
    let end = end.min(len - 1);
    if start > end || len == 0 {
        return &[];
    }
    &value[start as usize..=end as usize]
}

/// Whether every key WATCH read still has the version it read.
pub(super) fn watch_holds(watch: Option<&Watch>, store: &impl KvStore, now_ms: u64) -> Result<bool, StoreError> {
    for (key, version) in watch.iter().flat_map(|w| &w.keys) {
        if version_of(store, key, now_ms)? != *version {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The version of `key`'s live record, 0 when there is none: what WATCH
/// reads and EXEC compares.
fn version_of(store: &impl KvStore, key: &[u8], now_ms: u64) -> Result<u64, StoreError> {
    Ok(live(store, key, now_ms)?.map_or(0, |r| r.version))
}

fn for_each_live(store: &impl KvStore, now_ms: u64, mut f: impl FnMut(&[u8])) -> Result<(), StoreError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = store.scan(after.as_deref(), BATCH)?;
        for (k, r) in &batch {
            if r.is_live(now_ms) {
                f(k);
            }
        }
        if batch.len() < BATCH {
            return Ok(());
        }
        after = batch.into_iter().last().map(|(k, _)| k);
    }
}

fn too_long() -> Reply {
    Reply::err("string exceeds maximum allowed size (proto-max-bulk-len)")
}

fn now_i64(now_ms: u64) -> i64 {
    i64::try_from(now_ms).unwrap_or(i64::MAX)
}

/// `now + rel` as Redis computes it, or `None` where Redis reports an
/// invalid expire time because the sum overflows.
fn deadline(now_ms: u64, rel_ms: u64) -> Option<u64> {
    let rel = i64::try_from(rel_ms).ok()?;
    now_i64(now_ms).checked_add(rel).map(|at| at as u64)
}

/// Stores `rec` under `key`, or deletes the key if the record is already
/// past its deadline (the same observable result, without dead data).
fn put_or_expire(store: &mut impl KvStore, key: &[u8], rec: &Record, now_ms: u64) -> Result<(), StoreError> {
    if rec.is_live(now_ms) {
        overwrite(store, key, rec)
    } else {
        delete_key(store, key, now_ms).map(drop)
    }
}

fn set(
    store: &mut impl KvStore,
    now_ms: u64,
    key: &[u8],
    value: &[u8],
    expiry: Expiry,
    cond: SetCond,
    get: bool,
) -> Result<Reply, StoreError> {
    let new_at = match expiry {
        Expiry::RelMs(ms) => match deadline(now_ms, ms) {
            Some(at) => Some(at),
            None => return Ok(Reply::invalid_expire("set")),
        },
        Expiry::AtMs(at) => Some(at),
        Expiry::None | Expiry::KeepTtl => None,
    };
    // A plain SET does not depend on what the key held: skip reading it
    // (replacing it looks at it anyway, for a collection's element rows).
    let blind = cond == SetCond::None && !get && expiry != Expiry::KeepTtl;
    let old = if blind { None } else { live_for_write(store, key, now_ms)? };
    if get && old.as_ref().is_some_and(|r| !r.is_string()) {
        return Ok(wrong_type());
    }
    let found = old.is_some();
    let old_at = old.as_ref().and_then(|r| r.expire_at_ms);
    let previous = Reply::bulk_or_nil(old.map(|r| r.value));
    if (cond == SetCond::Nx && found) || (cond == SetCond::Xx && !found) {
        return Ok(if get { previous } else { Reply::Nil });
    }
    let expire_at_ms = if expiry == Expiry::KeepTtl { old_at } else { new_at };
    let rec = Record { expire_at_ms, ..Record::new(value) };
    put_or_expire(store, key, &rec, now_ms)?;
    Ok(if get { previous } else { Reply::Ok })
}

fn incr_by(store: &mut impl KvStore, now_ms: u64, key: &[u8], delta: i64) -> Result<Reply, StoreError> {
    let old = string!(live_for_write(store, key, now_ms)?);
    let current = match &old {
        None => 0,
        Some(rec) => match parse_i64(&rec.value) {
            Some(v) => v,
            None => return Ok(Reply::not_integer()),
        },
    };
    let Some(next) = current.checked_add(delta) else {
        return Ok(Reply::err("increment or decrement would overflow"));
    };
    let rec = Record { expire_at_ms: old.and_then(|r| r.expire_at_ms), ..Record::new(next.to_string()) };
    store.put(key, &rec)?;
    Ok(Reply::Int(next))
}

fn incr_by_float(store: &mut impl KvStore, now_ms: u64, key: &[u8], delta: &[u8]) -> Result<Reply, StoreError> {
    let old = string!(live_for_write(store, key, now_ms)?);
    let text = match LongDouble::increment(old.as_ref().map(|r| r.value.as_slice()), delta) {
        Ok(text) => text,
        Err(e) => return Ok(increment_error(e, Reply::not_float())),
    };
    let rec = Record { expire_at_ms: old.and_then(|r| r.expire_at_ms), ..Record::new(text.clone()) };
    store.put(key, &rec)?;
    Ok(Reply::Bulk(text))
}

fn set_range(
    store: &mut impl KvStore,
    now_ms: u64,
    key: &[u8],
    offset: u64,
    value: &[u8],
) -> Result<Reply, StoreError> {
    let old = string!(live_for_write(store, key, now_ms)?);
    if value.is_empty() {
        return Ok(Reply::Int(old.map_or(0, |r| r.value.len() as i64)));
    }
    let end = offset.saturating_add(value.len() as u64);
    if end > MAX_STRING_LEN {
        return Ok(too_long());
    }
    let mut rec = old.unwrap_or_else(|| Record::new(Vec::new()));
    let (offset, end) = (offset as usize, end as usize);
    if rec.value.len() < end {
        rec.value.resize(end, 0);
    }
    rec.value[offset..end].copy_from_slice(value);
    rec.raw = true;
    store.put(key, &rec)?;
    Ok(Reply::Int(rec.value.len() as i64))
}

fn get_ex(store: &mut impl KvStore, now_ms: u64, key: &[u8], expiry: GetExExpiry) -> Result<Reply, StoreError> {
    let Some(mut rec) = string!(live_for_write(store, key, now_ms)?) else {
        return Ok(Reply::Nil);
    };
    let value = Reply::Bulk(rec.value.clone());
    match expiry {
        GetExExpiry::Unchanged => {}
        GetExExpiry::Persist => {
            if rec.expire_at_ms.take().is_some() {
                store.put(key, &rec)?;
            }
        }
        GetExExpiry::RelMs(ms) => {
            let Some(at) = deadline(now_ms, ms) else {
                return Ok(Reply::invalid_expire("getex"));
            };
            rec.expire_at_ms = Some(at);
            store.put(key, &rec)?;
        }
        GetExExpiry::AtMs(at) => {
            // Redis deletes at once when an absolute deadline has passed.
            if at <= now_ms {
                remove(store, key, &rec)?;
            } else {
                rec.expire_at_ms = Some(at);
                store.put(key, &rec)?;
            }
        }
    }
    Ok(value)
}

fn expire(
    store: &mut impl KvStore,
    now_ms: u64,
    key: &[u8],
    at: ExpireAt,
    cond: ExpireCond,
) -> Result<Reply, StoreError> {
    let when = match at {
        ExpireAt::AtMs(at) => at,
        ExpireAt::RelMs(rel) => match now_i64(now_ms).checked_add(rel) {
            Some(at) => at,
            None => return Ok(Reply::invalid_expire("expire")),
        },
    };
    let Some(mut rec) = live_for_write(store, key, now_ms)? else {
        return Ok(Reply::Int(0));
    };
    let current = rec.expire_at_ms.map(|at| i64::try_from(at).unwrap_or(i64::MAX));
    let refused = (cond.nx && current.is_some())
        || (cond.xx && current.is_none())
        || (cond.gt && current.is_none_or(|cur| when <= cur))
        || (cond.lt && current.is_some_and(|cur| when >= cur));
    if refused {
        return Ok(Reply::Int(0));
    }
    if when <= now_i64(now_ms) {
        remove(store, key, &rec)?;
    } else {
        rec.expire_at_ms = Some(when as u64);
        store.put(key, &rec)?;
    }
    Ok(Reply::Int(1))
}

fn rename(store: &mut impl KvStore, now_ms: u64, from: &[u8], to: &[u8], nx: bool) -> Result<Reply, StoreError> {
    let Some(rec) = live_for_write(store, from, now_ms)? else {
        return Ok(Reply::err("no such key"));
    };
    let done = if nx { Reply::Int(1) } else { Reply::Ok };
    if from == to {
        return Ok(if nx { Reply::Int(0) } else { Reply::Ok });
    }
    if nx && live_for_write(store, to, now_ms)?.is_some() {
        return Ok(Reply::Int(0));
    }
    copy_key(store, from, to, &rec)?;
    remove(store, from, &rec)?;
    Ok(done)
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
