//! Keyspace notifications: which events a write causes, in Redis's
//! names and classes, and the `notify-keyspace-events` flags that choose
//! which of them are published.
//!
//! [`apply_noting`] applies a write as [`super::apply`] does and says
//! what happened to each of its keys, judged by which records the write
//! stored or deleted and by the key's existence before and after; writes
//! that change nothing (an SADD of members already there, an EXPIRE whose
//! condition fails) cause no event, as in Redis. Only a PRG's leader
//! publishes them; see the node's `pubsub` module.

use std::ops::Bound;

use super::collection::live;
use super::engine::{apply, read, watch_holds};
use super::hash::HashWrite;
use super::list::{End, ListWrite};
use super::op::{Expiry, GetExExpiry, TxOp, WriteOp};
use super::record::Record;
use super::reply::Reply;
use super::set::{SetAlgebra, SetWrite};
use super::store::{ElementRows, KvStore, StoreError};
use super::stream::StreamWrite;
use super::stream_group::GroupWrite;
use super::zset::ZSetWrite;

/// `K`: publish to `__keyspace@0__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish to `__keyevent@0__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 12;
pub const NEW: u32 = 1 << 13;
/// `A`: every class but key misses and new keys.
const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The flags a `notify-keyspace-events` value names, or `None` for a
/// character Redis does not know (Redis's `keyspaceEventsStringToFlags`).
pub fn parse_flags(s: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for c in s {
        flags |= match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// The flags as CONFIG GET shows them (Redis's `keyspaceEventsFlagsToString`).
pub fn flags_text(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(NEW, 'n'), (KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// One event of one key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub class: u32,
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
}

/// Whether `flags` publish anything of `class`: a class chosen, and
/// keyspace or keyevent channels.
pub fn wanted(flags: u32, class: u32) -> bool {
    flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0
}

/// Whether `flags` publish any event at all: else writes need not be
/// noted.
pub fn noting(flags: u32) -> bool {
    wanted(flags, !(KEYSPACE | KEYEVENT))
}

/// Applies `op` as [`apply`] does, adding to `events` what it did to its
/// keys, those of the classes `flags` choose.
pub fn apply_noting(
    op: &WriteOp,
    now_ms: u64,
    store: &mut impl KvStore,
    flags: u32,
    events: &mut Vec<Event>,
) -> Result<Reply, StoreError> {
    if let WriteOp::Exec { watch, ops } = op {
        // Each queued write notes its own events; a failed watch runs none.
        if !watch_holds(watch.as_ref(), store, now_ms)? {
            return Ok(Reply::NilArray);
        }
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            out.push(match op {
                TxOp::Write(w) => apply_noting(w, now_ms, store, flags, events)?,
                TxOp::Read(r) => read(r, now_ms, &*store)?,
            });
        }
        return Ok(Reply::Array(out));
    }
    if let WriteOp::Script { watch, at_ms, ops } = op {
        if !watch_holds(Some(watch), store, *at_ms)? {
            return Ok(Reply::NilArray);
        }
        for op in ops {
            apply_noting(op, *at_ms, store, flags, events)?;
        }
        return Ok(Reply::Int(ops.len() as i64));
    }
    let mut keys: Vec<&[u8]> = Vec::new();
    for k in op.keys() {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    // Redis's order: a move's destination first (LMOVE pushes, then pops).
    if matches!(op, WriteOp::List { op: ListWrite::Move { .. }, .. }) {
        keys.reverse();
    }
    // Whether each key lived, and whether it was stored though expired.
    let mut before = Vec::with_capacity(keys.len());
    for k in &keys {
        let stored = store.get(k)?;
        let lived = stored.as_ref().is_some_and(|r| r.is_live(now_ms));
        before.push((lived, stored.is_some() && !lived));
    }
    let reap = matches!(op, WriteOp::Reap { .. });
    let mut tracked = Tracking { store, touched: Vec::new(), rows_deleted: false };
    let reply = apply(op, now_ms, &mut tracked)?;
    let (touched, rows_deleted) = (tracked.touched, tracked.rows_deleted);
    let mut noted: Vec<(u32, &'static str, &[u8])> = Vec::new();
    for (key, (existed, expired)) in keys.iter().copied().zip(before) {
        if !touched.iter().any(|t| t == key) {
            continue;
        }
        // A key found expired is deleted first, as Redis's lookups do.
        if expired && !reap {
            noted.push((EXPIRED, "expired", key));
        }
        let exists = live(&*store, key, now_ms)?.is_some();
        if !existed && !exists && !reap {
            continue;
        }
        if exists && (!existed || replaces(op, key)) {
            noted.push((NEW, "new", key));
        }
        let deleted = existed && !exists;
        let mut own = events_of(op, key, deleted);
        if rows_deleted && matches!(op, WriteOp::Stream { op: StreamWrite::Add { trim: Some(_), .. }, .. }) {
            own.push((STREAM, "xtrim"));
        }
        // A key the write emptied goes, unless its own event said so.
        let said_del = own.last().is_some_and(|(_, name)| *name == "del");
        noted.extend(own.into_iter().map(|(class, name)| (class, name, key)));
        if deleted && !reap && !matches!(op, WriteOp::Rename { .. }) && !said_del {
            noted.push((GENERIC, "del", key));
        }
    }
    // RENAME: `new` on the target, then `rename_from`, then `rename_to`.
    if matches!(op, WriteOp::Rename { .. }) {
        noted.sort_by_key(|(_, name, _)| match *name {
            "expired" => 0,
            "new" => 1,
            "rename_from" => 2,
            _ => 3,
        });
    }
    for (class, name, key) in noted {
        if wanted(flags, class) {
            events.push(Event { class, name: name.to_string(), key: key.to_vec() });
        }
    }
    Ok(reply)
}

/// Writes that put a new value under `key` whether or not one was there,
/// so that Redis announces it as `new` either way.
fn replaces(op: &WriteOp, key: &[u8]) -> bool {
    match op {
        WriteOp::Rename { to, .. } | WriteOp::Copy { to, .. } => to.as_slice() == key,
        WriteOp::Restore { .. } | WriteOp::RestorePayload { .. } => true,
        _ => false,
    }
}

fn end_pop(end: End) -> &'static str {
    match end {
        End::Left => "lpop",
        End::Right => "rpop",
    }
}

fn end_push(end: End) -> &'static str {
    match end {
        End::Left => "lpush",
        End::Right => "rpush",
    }
}

/// The events `op` causes on `key`, which it changed (`deleted`: the key
/// existed before and is gone). A STORE form that stored nothing, or an
/// expiry in the past, deletes: its event is `del` alone.
fn events_of(op: &WriteOp, key: &[u8], deleted: bool) -> Vec<(u32, &'static str)> {
    let one = |class, name| vec![(class, name)];
    let stored = |class, name| if deleted { vec![(GENERIC, "del")] } else { vec![(class, name)] };
    match op {
        WriteOp::Set { expiry, .. } => match expiry {
            Expiry::RelMs(_) | Expiry::AtMs(_) => vec![(STRING, "set"), (GENERIC, "expire")],
            Expiry::None | Expiry::KeepTtl => one(STRING, "set"),
        },
        WriteOp::MSet { .. } | WriteOp::MSetNx { .. } => one(STRING, "set"),
        WriteOp::IncrBy { .. } => one(STRING, "incrby"),
        WriteOp::IncrByFloat { .. } => one(STRING, "incrbyfloat"),
        WriteOp::Append { .. } => one(STRING, "append"),
        WriteOp::SetRange { .. } => one(STRING, "setrange"),
        WriteOp::SetBit { .. } | WriteOp::BitField { .. } => one(STRING, "setbit"),
        WriteOp::BitOp { .. } => stored(STRING, "set"),
        WriteOp::Del { .. } | WriteOp::GetDel { .. } => one(GENERIC, "del"),
        WriteOp::GetEx { expiry, .. } => match expiry {
            GetExExpiry::Persist => one(GENERIC, "persist"),
            _ => stored(GENERIC, "expire"),
        },
        WriteOp::Expire { .. } => stored(GENERIC, "expire"),
        WriteOp::Persist { .. } => one(GENERIC, "persist"),
        WriteOp::Rename { from, .. } if from.as_slice() == key => one(GENERIC, "rename_from"),
        WriteOp::Rename { .. } => one(GENERIC, "rename_to"),
        WriteOp::Copy { .. } => one(GENERIC, "copy_to"),
        WriteOp::Restore { .. } | WriteOp::RestorePayload { .. } => stored(GENERIC, "restore"),
        WriteOp::Sort { .. } => stored(LIST, "sortstore"),
        WriteOp::Reap { .. } => one(EXPIRED, "expired"),
        WriteOp::Flush | WriteOp::Exec { .. } | WriteOp::Script { .. } => Vec::new(),
        WriteOp::Hash { op, .. } => one(
            HASH,
            match op {
                HashWrite::Set { .. } | HashWrite::SetNx { .. } => "hset",
                HashWrite::Del { .. } => "hdel",
                HashWrite::IncrBy { .. } => "hincrby",
                HashWrite::IncrByFloat { .. } => "hincrbyfloat",
            },
        ),
        WriteOp::Members { key: src, op } => match op {
            SetWrite::Add { .. } => one(SET, "sadd"),
            SetWrite::Rem { .. } => one(SET, "srem"),
            SetWrite::Pop { .. } => one(SET, "spop"),
            SetWrite::Move { .. } if src.as_slice() == key => one(SET, "srem"),
            SetWrite::Move { .. } => one(SET, "sadd"),
            SetWrite::Store { op, .. } => stored(
                SET,
                match op {
                    SetAlgebra::Inter => "sinterstore",
                    SetAlgebra::Union => "sunionstore",
                    SetAlgebra::Diff => "sdiffstore",
                },
            ),
        },
        WriteOp::List { key: src, op } => match op {
            ListWrite::Push { end, .. } => one(LIST, end_push(*end)),
            ListWrite::Pop { end, .. } | ListWrite::MPop { end, .. } | ListWrite::FirstPop { end, .. } => {
                one(LIST, end_pop(*end))
            }
            ListWrite::Set { .. } => one(LIST, "lset"),
            ListWrite::Trim { .. } => one(LIST, "ltrim"),
            ListWrite::Rem { .. } => one(LIST, "lrem"),
            ListWrite::Insert { .. } => one(LIST, "linsert"),
            // A list rotated onto itself has both, the push first.
            ListWrite::Move { dest, from, to } if src == dest => vec![(LIST, end_push(*to)), (LIST, end_pop(*from))],
            ListWrite::Move { from, .. } if src.as_slice() == key => one(LIST, end_pop(*from)),
            ListWrite::Move { to, .. } => one(LIST, end_push(*to)),
        },
        WriteOp::Stream { op, .. } => one(
            STREAM,
            match op {
                StreamWrite::Add { .. } => "xadd",
                StreamWrite::Trim { .. } => "xtrim",
                StreamWrite::Del { .. } => "xdel",
                StreamWrite::SetId { .. } => "xsetid",
                StreamWrite::Group { op, .. } => match op {
                    GroupWrite::Create { .. } => "xgroup-create",
                    GroupWrite::SetId { .. } => "xgroup-setid",
                    GroupWrite::Destroy => "xgroup-destroy",
                    GroupWrite::DelConsumer { .. } => "xgroup-delconsumer",
                    // The others store the header only when they created
                    // a consumer.
                    GroupWrite::CreateConsumer { .. }
                    | GroupWrite::Read { .. }
                    | GroupWrite::Claim(_)
                    | GroupWrite::AutoClaim { .. }
                    | GroupWrite::Ack { .. } => "xgroup-createconsumer",
                },
            },
        ),
        WriteOp::ZSet { op, .. } => match op {
            ZSetWrite::Add { flags, .. } if flags.incr => one(ZSET, "zincr"),
            ZSetWrite::Add { .. } => one(ZSET, "zadd"),
            ZSetWrite::IncrBy { .. } => one(ZSET, "zincr"),
            ZSetWrite::Rem { .. } => one(ZSET, "zrem"),
            ZSetWrite::RemRange { range } => one(ZSET, range.removal_event()),
            ZSetWrite::Pop { max, .. } | ZSetWrite::MPop { max, .. } => {
                one(ZSET, if *max { "zpopmax" } else { "zpopmin" })
            }
            ZSetWrite::Store { op, .. } => stored(ZSET, op.store_event()),
            ZSetWrite::RangeStore { .. } => stored(ZSET, "zrangestore"),
        },
    }
}

/// A store that notes which keys' records a write stored or deleted.
struct Tracking<'a, S: KvStore> {
    store: &'a mut S,
    touched: Vec<Vec<u8>>,
    /// Whether an element row was deleted (an XADD that trimmed).
    rows_deleted: bool,
}

impl<S: KvStore> Tracking<'_, S> {
    fn touch(&mut self, key: &[u8]) {
        if !self.touched.iter().any(|t| t == key) {
            self.touched.push(key.to_vec());
        }
    }
}

impl<S: KvStore> KvStore for Tracking<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        self.store.get(key)
    }
    fn put(&mut self, key: &[u8], rec: &Record) -> Result<(), StoreError> {
        self.touch(key);
        self.store.put(key, rec)
    }
    fn delete(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        let was = self.store.delete(key)?;
        if was {
            self.touch(key);
        }
        Ok(was)
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
    fn may_hold_collections(&self, key: &[u8]) -> Result<bool, StoreError> {
        self.store.may_hold_collections(key)
    }
    fn elem_get(&self, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.elem_get(key, sub)
    }
    fn elem_put(&mut self, key: &[u8], sub: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.store.elem_put(key, sub, value)
    }
    fn elem_delete(&mut self, key: &[u8], sub: &[u8]) -> Result<(), StoreError> {
        self.rows_deleted = true;
        self.store.elem_delete(key, sub)
    }
    fn elem_range(
        &self,
        key: &[u8],
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<ElementRows, StoreError> {
        self.store.elem_range(key, lower, upper, limit)
    }
}

#[cfg(test)]
#[path = "notify_tests.rs"]
mod tests;
