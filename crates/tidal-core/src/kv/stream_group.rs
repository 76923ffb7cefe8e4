//! Consumer groups of a stream: XGROUP, XREADGROUP, XACK, XPENDING,
//! XCLAIM, XAUTOCLAIM and what XINFO tells of them.
//!
//! A group and everything it owns are element rows of the stream's key,
//! after its entries and nodes:
//!
//! ```text
//!  0x02 ‖ group                         ──► last delivered ‖ entries read ‖ pending ‖ consumers
//!  0x03 ‖ len ‖ group ‖ id              ──► delivery time ‖ deliveries ‖ consumer   the group's PEL
//!  0x04 ‖ len ‖ group ‖ consumer        ──► seen time ‖ pending                     its consumers
//!  0x05 ‖ len ‖ group ‖ len ‖ consumer ‖ id ──► (nothing)                           each one's PEL
//! ```
//!
//! (`len` is a 4-byte length, so one group's rows never run into
//! another's.) Rows sort as Redis's radix trees do, so XINFO lists groups
//! and consumers, and XPENDING entries, in Redis's order. Times are the
//! apply time of the write that set them, so every replica keeps the same.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::collection::word;
use super::rdb::GroupValue;
use super::reply::Reply;
use super::store::{bound_slice, prefixed_bounds};
use super::store::{KvStore, StoreError};
use super::stream::{entries, entry_reply, open_read, open_write, read_count, Meta, ReadFrom, Row, StreamId};

const GROUP: u8 = 0x02;
const PEL: u8 = 0x03;
const CONSUMER: u8 = 0x04;
const OWNED: u8 = 0x05;

/// Where XREADGROUP reads a stream from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupFrom {
    /// `>`: entries never delivered to the group.
    New,
    /// The consumer's own pending entries after this ID (its history).
    History(StreamId),
}

/// XCLAIM's delivery time option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// `IDLE ms`: this long before the claim.
    Idle(i64),
    /// `TIME ms`: at this Unix time.
    Time(i64),
}

/// XCLAIM's arguments after the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub consumer: Vec<u8>,
    pub min_idle: u64,
    pub ids: Vec<StreamId>,
    pub delivery: Option<Delivery>,
    pub retry_count: Option<u64>,
    pub force: bool,
    pub justid: bool,
    pub last_id: Option<StreamId>,
}

/// A consumer group command that writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupWrite {
    /// XGROUP CREATE; `entries_read`: ENTRIESREAD (`None`: unknown).
    Create { from: ReadFrom, mkstream: bool, entries_read: Option<u64> },
    /// XGROUP SETID.
    SetId { from: ReadFrom, entries_read: Option<u64> },
    /// XGROUP DESTROY.
    Destroy,
    /// XGROUP CREATECONSUMER.
    CreateConsumer { consumer: Vec<u8> },
    /// XGROUP DELCONSUMER.
    DelConsumer { consumer: Vec<u8> },
    /// XREADGROUP over the op's key and `others` (one slot); `woken` as
    /// for XREAD (see [`super::stream::StreamRead::Read`]), and a woken
    /// read whose stream or group went answers an error.
    Read { others: Vec<Vec<u8>>, consumer: Vec<u8>, from: Vec<GroupFrom>, count: Option<u64>, noack: bool, woken: bool },
    /// XACK.
    Ack { ids: Vec<StreamId> },
    /// XCLAIM.
    Claim(Claim),
    /// XAUTOCLAIM.
    AutoClaim { consumer: Vec<u8>, min_idle: u64, start: StreamId, count: u64, justid: bool },
}

/// XPENDING's extended form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRange {
    pub min_idle: u64,
    pub start: StreamId,
    pub end: StreamId,
    pub count: u64,
    pub consumer: Option<Vec<u8>>,
}

/// A consumer group command that reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupRead {
    /// XPENDING: the summary, or the entries of a range.
    Pending(Option<PendingRange>),
    /// XINFO CONSUMERS.
    Consumers,
}

/// A group's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Group {
    last: StreamId,
    /// The logical count of entries delivered, when known.
    entries_read: Option<u64>,
    pending: u64,
    consumers: u64,
}

impl Group {
    fn decode(v: &[u8]) -> Group {
        let read = word(v, 16);
        Group {
            last: StreamId::at(v, 0),
            entries_read: (read != u64::MAX).then_some(read),
            pending: word(v, 24),
            consumers: word(v, 32),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = self.last.bytes().to_vec();
        v.extend_from_slice(&self.entries_read.unwrap_or(u64::MAX).to_be_bytes());
        v.extend_from_slice(&self.pending.to_be_bytes());
        v.extend_from_slice(&self.consumers.to_be_bytes());
        v
    }
}

/// A pending entry: when it was last delivered, how often, to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Nack {
    time: u64,
    count: u64,
    consumer: Vec<u8>,
}

impl Nack {
    fn decode(v: &[u8]) -> Nack {
        Nack { time: word(v, 0), count: word(v, 8), consumer: v.get(16..).unwrap_or_default().to_vec() }
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = self.time.to_be_bytes().to_vec();
        v.extend_from_slice(&self.count.to_be_bytes());
        v.extend_from_slice(&self.consumer);
        v
    }
}

/// A consumer's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Consumer {
    seen: u64,
    pending: u64,
}

impl Consumer {
    fn decode(v: &[u8]) -> Consumer {
        Consumer { seen: word(v, 0), pending: word(v, 8) }
    }

    fn encode(&self) -> Vec<u8> {
        [self.seen.to_be_bytes(), self.pending.to_be_bytes()].concat()
    }
}

fn named(tag: u8, name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + name.len());
    out.push(tag);
    out.extend_from_slice(&(name.len() as u32).to_be_bytes());
    out.extend_from_slice(name);
    out
}

fn group_sub(group: &[u8]) -> Vec<u8> {
    [&[GROUP][..], group].concat()
}

fn pel_sub(group: &[u8], id: StreamId) -> Vec<u8> {
    [named(PEL, group), id.bytes().to_vec()].concat()
}

fn consumer_sub(group: &[u8], consumer: &[u8]) -> Vec<u8> {
    [named(CONSUMER, group), consumer.to_vec()].concat()
}

fn owned_prefix(group: &[u8], consumer: &[u8]) -> Vec<u8> {
    let mut p = named(OWNED, group);
    p.extend_from_slice(&(consumer.len() as u32).to_be_bytes());
    p.extend_from_slice(consumer);
    p
}

fn id_after(prefix: &[u8], sub: &[u8]) -> StreamId {
    StreamId::from_bytes(&sub[prefix.len()..])
}

/// Up to `limit` rows of `key` under `prefix` from `from` (a sub-key,
/// included) on.
fn rows_from(
    store: &impl KvStore,
    key: &[u8],
    prefix: &[u8],
    from: &[u8],
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    let (lo, hi) = prefixed_bounds(prefix, Bound::Included(&from[prefix.len()..]), Bound::Unbounded);
    store.elem_range(key, bound_slice(&lo), bound_slice(&hi), limit)
}

/// Every row under `prefix`.
fn all_rows(store: &impl KvStore, key: &[u8], prefix: &[u8]) -> Result<Vec<Row>, StoreError> {
    rows_from(store, key, prefix, prefix, usize::MAX)
}

fn no_key(key: &[u8], group: &[u8]) -> Reply {
    Reply::Error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

fn no_group_for(key: &[u8], group: &[u8]) -> Reply {
    Reply::Error(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    ))
}

/// Whether `start..` may hold a deleted entry, so that counting entries
/// read by IDs is unsafe (Redis's `streamRangeHasTombstones`).
fn has_tombstones(meta: &Meta, start: StreamId) -> bool {
    if meta.len == 0 || meta.max_deleted == StreamId::MIN || meta.first > meta.max_deleted {
        return false;
    }
    start <= meta.max_deleted
}

/// How many entries were ever added up to `id`, when that can be known
/// (Redis's `streamEstimateDistanceFromFirstEverEntry`).
fn distance(meta: &Meta, id: StreamId) -> Option<u64> {
    estimate_read(meta.added, meta.len, meta.last, meta.first, meta.max_deleted, id)
}

/// [`distance`] from a stream's counts and IDs: what a group at `id` has
/// read, when that can be known.
pub(super) fn estimate_read(
    added: u64,
    len: u64,
    last: StreamId,
    first: StreamId,
    max_deleted: StreamId,
    id: StreamId,
) -> Option<u64> {
    if added == 0 {
        return Some(0);
    }
    if (len == 0 && id <= last) || id == last {
        return Some(added);
    }
    if id > last {
        return None;
    }
    if max_deleted == StreamId::MIN || max_deleted < first {
        if id < first {
            return Some(added.saturating_sub(len));
        }
        if id == first {
            return Some(added.saturating_sub(len) + 1);
        }
    }
    None
}

/// A group's lag: entries added it has not read, when that can be known
/// (negative when ENTRIESREAD said more than were added, as in Redis).
fn lag(meta: &Meta, g: &Group) -> Option<i64> {
    if meta.added == 0 {
        return Some(0);
    }
    let behind = |read: u64| meta.added as i64 - read as i64;
    if let Some(read) = g.entries_read.filter(|_| !has_tombstones(meta, g.last)) {
        return Some(behind(read));
    }
    distance(meta, g.last).map(behind)
}

/// One group, and the consumers a write changed, saved together.
struct Open {
    name: Vec<u8>,
    g: Group,
    consumers: BTreeMap<Vec<u8>, Consumer>,
    /// Consumers created by this write (what `xgroup-createconsumer`
    /// announces).
    created: bool,
    changed: bool,
}

impl Open {
    fn load(store: &impl KvStore, key: &[u8], name: &[u8]) -> Result<Option<Open>, StoreError> {
        Ok(store.elem_get(key, &group_sub(name))?.map(|v| Open {
            name: name.to_vec(),
            g: Group::decode(&v),
            consumers: BTreeMap::new(),
            created: false,
            changed: false,
        }))
    }

    fn consumer(&mut self, store: &impl KvStore, key: &[u8], name: &[u8]) -> Result<Option<Consumer>, StoreError> {
        if let Some(c) = self.consumers.get(name) {
            return Ok(Some(*c));
        }
        let found = store.elem_get(key, &consumer_sub(&self.name, name))?.map(|v| Consumer::decode(&v));
        if let Some(c) = found {
            self.consumers.insert(name.to_vec(), c);
        }
        Ok(found)
    }

    /// The consumer `name`, seen now, created if missing.
    fn touch(&mut self, store: &impl KvStore, key: &[u8], name: &[u8], now_ms: u64) -> Result<(), StoreError> {
        let mut c = match self.consumer(store, key, name)? {
            Some(c) => c,
            None => {
                self.g.consumers += 1;
                self.created = true;
                Consumer { seen: now_ms, pending: 0 }
            }
        };
        c.seen = now_ms;
        self.consumers.insert(name.to_vec(), c);
        self.changed = true;
        Ok(())
    }

    fn nack(&self, store: &impl KvStore, key: &[u8], id: StreamId) -> Result<Option<Nack>, StoreError> {
        Ok(store.elem_get(key, &pel_sub(&self.name, id))?.map(|v| Nack::decode(&v)))
    }

    /// Give pending entry `id` to `to` (which [`Self::touch`] loaded),
    /// taking it from its owner if another; `nack` is what it becomes.
    fn own(
        &mut self,
        store: &mut impl KvStore,
        key: &[u8],
        id: StreamId,
        old: Option<&Nack>,
        nack: Nack,
    ) -> Result<(), StoreError> {
        match old {
            Some(o) if o.consumer != nack.consumer => {
                self.disown(store, key, id, &o.consumer)?;
                self.adopt(store, key, id, &nack.consumer)?;
            }
            Some(_) => {}
            None => {
                self.g.pending += 1;
                self.adopt(store, key, id, &nack.consumer)?;
            }
        }
        store.elem_put(key, &pel_sub(&self.name, id), &nack.encode())?;
        self.changed = true;
        Ok(())
    }

    fn adopt(&mut self, store: &mut impl KvStore, key: &[u8], id: StreamId, consumer: &[u8]) -> Result<(), StoreError> {
        let sub = [owned_prefix(&self.name, consumer), id.bytes().to_vec()].concat();
        store.elem_put(key, &sub, &[])?;
        if let Some(mut c) = self.consumer(store, key, consumer)? {
            c.pending += 1;
            self.consumers.insert(consumer.to_vec(), c);
        }
        Ok(())
    }

    fn disown(
        &mut self,
        store: &mut impl KvStore,
        key: &[u8],
        id: StreamId,
        consumer: &[u8],
    ) -> Result<(), StoreError> {
        let sub = [owned_prefix(&self.name, consumer), id.bytes().to_vec()].concat();
        store.elem_delete(key, &sub)?;
        if let Some(mut c) = self.consumer(store, key, consumer)? {
            c.pending = c.pending.saturating_sub(1);
            self.consumers.insert(consumer.to_vec(), c);
        }
        Ok(())
    }

    /// Forget pending entry `id` (acknowledged, or its entry is gone).
    fn forget(&mut self, store: &mut impl KvStore, key: &[u8], id: StreamId, nack: &Nack) -> Result<(), StoreError> {
        store.elem_delete(key, &pel_sub(&self.name, id))?;
        self.disown(store, key, id, &nack.consumer)?;
        self.g.pending = self.g.pending.saturating_sub(1);
        self.changed = true;
        Ok(())
    }

    fn save(&self, store: &mut impl KvStore, key: &[u8]) -> Result<(), StoreError> {
        if !self.changed {
            return Ok(());
        }
        store.elem_put(key, &group_sub(&self.name), &self.g.encode())?;
        for (name, c) in &self.consumers {
            store.elem_put(key, &consumer_sub(&self.name, name), &c.encode())?;
        }
        Ok(())
    }
}

/// Where `from` puts a group: the stream's last ID for `$`.
fn start_of(from: ReadFrom, meta: Option<&Meta>) -> StreamId {
    match from {
        ReadFrom::Last => meta.map_or(StreamId::MIN, |m| m.last),
        ReadFrom::After(id) => id,
    }
}

pub(super) fn apply(
    store: &mut impl KvStore,
    key: &[u8],
    group: &[u8],
    op: &GroupWrite,
    now_ms: u64,
) -> Result<Reply, StoreError> {
    if let GroupWrite::Read { others, consumer, from, count, noack, woken } = op {
        return read_group(store, key, group, (others, consumer), from, (*count, *noack, *woken), now_ms);
    }
    let meta = match open_write(store, key, now_ms)? {
        Ok(m) => m,
        Err(reply) => return Ok(reply),
    };
    match op {
        GroupWrite::Create { from, mkstream, entries_read } => {
            let mut meta = match meta {
                Some(m) => m,
                None if *mkstream => Meta::new(),
                None => return Ok(needs_key()),
            };
            let last = start_of(*from, Some(&meta));
            if store.elem_get(key, &group_sub(group))?.is_some() {
                // MKSTREAM on a missing key cannot meet an existing group.
                return Ok(Reply::Error("BUSYGROUP Consumer Group name already exists".into()));
            }
            let g = Group { last, entries_read: *entries_read, pending: 0, consumers: 0 };
            store.elem_put(key, &group_sub(group), &g.encode())?;
            meta.groups += 1;
            meta.save(store, key)?;
            Ok(Reply::Ok)
        }
        GroupWrite::Ack { ids } => {
            let Some(mut g) = open_group(store, key, meta.is_some(), group)? else { return Ok(Reply::Int(0)) };
            let mut acked = 0;
            for id in ids {
                if let Some(nack) = g.nack(store, key, *id)? {
                    g.forget(store, key, *id, &nack)?;
                    acked += 1;
                }
            }
            g.save(store, key)?;
            Ok(Reply::Int(acked))
        }
        GroupWrite::Claim(c) => {
            let Some(meta) = meta else { return Ok(no_key(key, group)) };
            let Some(g) = Open::load(store, key, group)? else { return Ok(no_key(key, group)) };
            claim(store, key, meta, g, c, now_ms)
        }
        GroupWrite::AutoClaim { consumer, min_idle, start, count, justid } => {
            let Some(meta) = meta else { return Ok(no_key(key, group)) };
            let Some(g) = Open::load(store, key, group)? else { return Ok(no_key(key, group)) };
            auto_claim(store, key, meta, g, (consumer, *min_idle, *start, *count, *justid), now_ms)
        }
        _ => {
            let Some(mut meta) = meta else { return Ok(needs_key()) };
            let found = Open::load(store, key, group)?;
            match (op, found) {
                (GroupWrite::Destroy, None) => Ok(Reply::Int(0)),
                (GroupWrite::Destroy, Some(_)) => {
                    for prefix in [named(PEL, group), named(CONSUMER, group), named(OWNED, group)] {
                        for (s, _) in all_rows(store, key, &prefix)? {
                            store.elem_delete(key, &s)?;
                        }
                    }
                    store.elem_delete(key, &group_sub(group))?;
                    meta.groups -= 1;
                    meta.save(store, key)?;
                    Ok(Reply::Int(1))
                }
                (_, None) => Ok(no_group_for(key, group)),
                (GroupWrite::SetId { from, entries_read }, Some(mut g)) => {
                    g.g.last = start_of(*from, Some(&meta));
                    g.g.entries_read = *entries_read;
                    g.changed = true;
                    g.save(store, key)?;
                    meta.save(store, key)?;
                    Ok(Reply::Ok)
                }
                (GroupWrite::CreateConsumer { consumer }, Some(mut g)) => {
                    if g.consumer(store, key, consumer)?.is_some() {
                        return Ok(Reply::Int(0));
                    }
                    g.touch(store, key, consumer, now_ms)?;
                    g.save(store, key)?;
                    meta.save(store, key)?;
                    Ok(Reply::Int(1))
                }
                (GroupWrite::DelConsumer { consumer }, Some(mut g)) => {
                    if g.consumer(store, key, consumer)?.is_none() {
                        return Ok(Reply::Int(0));
                    }
                    let owned = all_rows(store, key, &owned_prefix(group, consumer))?;
                    for (s, _) in &owned {
                        let id = id_after(&owned_prefix(group, consumer), s);
                        store.elem_delete(key, s)?;
                        store.elem_delete(key, &pel_sub(group, id))?;
                    }
                    let pending = owned.len() as u64;
                    g.g.pending = g.g.pending.saturating_sub(pending);
                    g.g.consumers = g.g.consumers.saturating_sub(1);
                    g.consumers.remove(consumer.as_slice());
                    g.changed = true;
                    store.elem_delete(key, &consumer_sub(group, consumer))?;
                    g.save(store, key)?;
                    meta.save(store, key)?;
                    Ok(Reply::Int(pending as i64))
                }
                _ => unreachable!("the other group writes are answered above"),
            }
        }
    }
}

fn needs_key() -> Reply {
    Reply::err(
        "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM \
         option to create an empty stream automatically.",
    )
}

fn open_group(store: &impl KvStore, key: &[u8], exists: bool, group: &[u8]) -> Result<Option<Open>, StoreError> {
    if !exists {
        return Ok(None);
    }
    Open::load(store, key, group)
}

/// Whether the entry `id` is in the stream.
fn exists(store: &impl KvStore, key: &[u8], id: StreamId) -> Result<Option<Reply>, StoreError> {
    Ok(entries(store, key, id, id, 1)?.pop().map(|(s, v)| entry_reply(&s, &v)))
}

#[allow(clippy::type_complexity)]
fn read_group(
    store: &mut impl KvStore,
    key: &[u8],
    group: &[u8],
    (others, consumer): (&[Vec<u8>], &[u8]),
    from: &[GroupFrom],
    (count, noack, woken): (Option<u64>, bool, bool),
    now_ms: u64,
) -> Result<Reply, StoreError> {
    let keys: Vec<Vec<u8>> = std::iter::once(key.to_vec()).chain(others.iter().cloned()).collect();
    // Every stream and group must be there before any is served.
    for k in &keys {
        let meta = match open_write(store, k, now_ms)? {
            Ok(m) => m,
            Err(_) if woken => return Ok(Reply::Error("UNBLOCKED the stream key no longer exists".into())),
            Err(reply) => return Ok(reply),
        };
        let g = match &meta {
            Some(_) => Open::load(store, k, group)?,
            None => None,
        };
        match (meta, g) {
            (Some(_), Some(_)) => {}
            (None, _) if woken => return Ok(Reply::Error("UNBLOCKED the stream key no longer exists".into())),
            _ if woken => {
                return Ok(Reply::Error(
                    "NOGROUP the consumer group this client was blocked on no longer exists".into(),
                ))
            }
            _ => {
                return Ok(Reply::Error(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(group)
                )))
            }
        }
    }
    let count = read_count(count, woken);
    let mut out = Vec::new();
    for (k, from) in keys.iter().zip(from) {
        // Opened here, after the keys before it were saved: a stream named
        // twice is served once, as in Redis.
        let (Ok(Some(meta)), Some(mut g)) = (open_write(store, k, now_ms)?, Open::load(store, k, group)?) else {
            continue;
        };
        let items = match from {
            GroupFrom::History(after) => {
                g.touch(store, k, consumer, now_ms)?;
                history(store, k, &mut g, consumer, *after, count, now_ms)?
            }
            GroupFrom::New => {
                let Some(start) = g.g.last.next() else { continue };
                let rows =
                    entries(store, k, start, StreamId::MAX, if count == 0 { usize::MAX } else { count as usize })?;
                if rows.is_empty() {
                    continue;
                }
                g.touch(store, k, consumer, now_ms)?;
                let mut items = Vec::with_capacity(rows.len());
                for (s, v) in &rows {
                    let id = StreamId::from_bytes(&s[1..]);
                    deliver(&meta, &mut g.g, id);
                    items.push(entry_reply(s, v));
                    if !noack {
                        let old = g.nack(store, k, id)?;
                        let nack = Nack { time: now_ms, count: 1, consumer: consumer.to_vec() };
                        g.own(store, k, id, old.as_ref(), nack)?;
                    }
                }
                g.changed = true;
                items
            }
        };
        g.save(store, k)?;
        if g.created {
            // Announced as Redis announces it (`xgroup-createconsumer`).
            meta.save(store, k)?;
        }
        out.push((Reply::bulk(k.clone()), Reply::Array(items)));
        if woken {
            break;
        }
    }
    Ok(if out.is_empty() { Reply::NilArray } else { Reply::Keyed(out) })
}

/// The group reads `id`, after its last: its counter follows when it can.
fn deliver(meta: &Meta, g: &mut Group, id: StreamId) {
    if id <= g.last {
        return;
    }
    match g.entries_read {
        Some(n) if !has_tombstones(meta, id) => g.entries_read = Some(n + 1),
        _ if meta.added > 0 => g.entries_read = distance(meta, id),
        _ => {}
    }
    g.last = id;
}

/// A consumer's pending entries after `after`: each entry again (its
/// delivery counted), or its ID with nil when the entry is gone.
fn history(
    store: &mut impl KvStore,
    key: &[u8],
    g: &mut Open,
    consumer: &[u8],
    after: StreamId,
    count: u64,
    now_ms: u64,
) -> Result<Vec<Reply>, StoreError> {
    let prefix = owned_prefix(&g.name, consumer);
    let Some(start) = after.next() else { return Ok(Vec::new()) };
    let from = [prefix.clone(), start.bytes().to_vec()].concat();
    let limit = if count == 0 { usize::MAX } else { count as usize };
    let mut items = Vec::new();
    for (s, _) in rows_from(store, key, &prefix, &from, limit)? {
        let id = id_after(&prefix, &s);
        match exists(store, key, id)? {
            Some(entry) => {
                items.push(entry);
                if let Some(mut nack) = g.nack(store, key, id)? {
                    nack.time = now_ms;
                    nack.count += 1;
                    store.elem_put(key, &pel_sub(&g.name, id), &nack.encode())?;
                }
            }
            None => items.push(Reply::Array(vec![id.reply(), Reply::NilArray])),
        }
    }
    Ok(items)
}

fn claim(
    store: &mut impl KvStore,
    key: &[u8],
    meta: Meta,
    mut g: Open,
    c: &Claim,
    now_ms: u64,
) -> Result<Reply, StoreError> {
    let now = now_ms as i64;
    if let Some(last) = c.last_id.filter(|l| *l > g.g.last) {
        g.g.last = last;
        g.changed = true;
    }
    let time = match c.delivery {
        Some(Delivery::Idle(idle)) => now.saturating_sub(idle),
        Some(Delivery::Time(t)) => t,
        None => now,
    };
    let time = if time < 0 || time > now { now_ms } else { time as u64 };
    let mut out = Vec::new();
    for id in &c.ids {
        let nack = g.nack(store, key, *id)?;
        let Some(entry) = exists(store, key, *id)? else {
            if let Some(n) = nack {
                g.forget(store, key, *id, &n)?;
            }
            continue;
        };
        let old = match nack {
            Some(n) => Some(n),
            None if c.force => None,
            None => continue,
        };
        if let Some(o) = &old {
            if c.min_idle > 0 && now_ms.saturating_sub(o.time) < c.min_idle {
                continue;
            }
        }
        g.touch(store, key, &c.consumer, now_ms)?;
        let count = match (c.retry_count, &old) {
            (Some(n), _) => n,
            (None, Some(o)) if !c.justid => o.count + 1,
            (None, Some(o)) => o.count,
            // A forced claim of an entry no one had: a new delivery
            // counted once, and once more for this claim unless JUSTID.
            (None, None) => 1 + u64::from(!c.justid),
        };
        g.own(store, key, *id, old.as_ref(), Nack { time, count, consumer: c.consumer.clone() })?;
        out.push(if c.justid { id.reply() } else { entry });
    }
    g.save(store, key)?;
    if g.created {
        meta.save(store, key)?;
    }
    Ok(Reply::Array(out))
}

fn auto_claim(
    store: &mut impl KvStore,
    key: &[u8],
    meta: Meta,
    mut g: Open,
    (consumer, min_idle, start, count, justid): (&[u8], u64, StreamId, u64, bool),
    now_ms: u64,
) -> Result<Reply, StoreError> {
    let prefix = named(PEL, &g.name);
    let from = [prefix.clone(), start.bytes().to_vec()].concat();
    let (mut left, mut attempts) = (count, count.saturating_mul(10));
    let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
    let mut cursor = StreamId::MIN;
    // Each row examined takes an attempt; one more names the cursor.
    let limit = usize::try_from(attempts.saturating_add(1)).unwrap_or(usize::MAX);
    for (s, v) in rows_from(store, key, &prefix, &from, limit)? {
        if attempts == 0 || left == 0 {
            cursor = id_after(&prefix, &s);
            break;
        }
        attempts -= 1;
        let id = id_after(&prefix, &s);
        let nack = Nack::decode(&v);
        let Some(entry) = exists(store, key, id)? else {
            g.forget(store, key, id, &nack)?;
            deleted.push(id.reply());
            left -= 1;
            continue;
        };
        if min_idle > 0 && now_ms.saturating_sub(nack.time) < min_idle {
            continue;
        }
        g.touch(store, key, consumer, now_ms)?;
        let count = if justid { nack.count } else { nack.count + 1 };
        g.own(store, key, id, Some(&nack), Nack { time: now_ms, count, consumer: consumer.to_vec() })?;
        claimed.push(if justid { id.reply() } else { entry });
        left -= 1;
    }
    g.save(store, key)?;
    if g.created {
        meta.save(store, key)?;
    }
    Ok(Reply::Array(vec![cursor.reply(), Reply::Array(claimed), Reply::Array(deleted)]))
}

pub(super) fn read(
    store: &impl KvStore,
    key: &[u8],
    group: &[u8],
    op: &GroupRead,
    now_ms: u64,
) -> Result<Reply, StoreError> {
    let meta = match open_read(store, key, now_ms)? {
        Ok(m) => m,
        Err(reply) => return Ok(reply),
    };
    let g = match &meta {
        Some(_) => Open::load(store, key, group)?,
        None => None,
    };
    let Some(g) = g else {
        return Ok(match (op, meta) {
            (GroupRead::Consumers, None) => Reply::err("no such key"),
            (GroupRead::Consumers, Some(_)) => no_group_for(key, group),
            (GroupRead::Pending(_), _) => no_key(key, group),
        });
    };
    match op {
        GroupRead::Consumers => {
            let prefix = named(CONSUMER, group);
            let out = all_rows(store, key, &prefix)?
                .into_iter()
                .map(|(s, v)| {
                    let c = Consumer::decode(&v);
                    Reply::Map(vec![
                        (Reply::bulk("name"), Reply::bulk(&s[prefix.len()..])),
                        (Reply::bulk("pending"), Reply::Int(c.pending as i64)),
                        (Reply::bulk("idle"), Reply::Int(now_ms.saturating_sub(c.seen) as i64)),
                    ])
                })
                .collect();
            Ok(Reply::Array(out))
        }
        GroupRead::Pending(None) => pending_summary(store, key, &g),
        GroupRead::Pending(Some(range)) => {
            let prefix = match &range.consumer {
                Some(c) => {
                    if store.elem_get(key, &consumer_sub(group, c))?.is_none() {
                        return Ok(Reply::Array(Vec::new()));
                    }
                    owned_prefix(group, c)
                }
                None => named(PEL, group),
            };
            let from = [prefix.clone(), range.start.bytes().to_vec()].concat();
            let mut out = Vec::new();
            let mut after = from;
            'pages: while (out.len() as u64) < range.count {
                let rows = rows_from(store, key, &prefix, &after, 512)?;
                for (s, _) in &rows {
                    let id = id_after(&prefix, s);
                    if id > range.end || out.len() as u64 >= range.count {
                        break 'pages;
                    }
                    let Some(nack) = g.nack(store, key, id)? else { continue };
                    let idle = now_ms.saturating_sub(nack.time);
                    if range.min_idle > 0 && idle < range.min_idle {
                        continue;
                    }
                    out.push(Reply::Array(vec![
                        id.reply(),
                        Reply::bulk(nack.consumer),
                        Reply::Int(idle as i64),
                        Reply::Int(nack.count as i64),
                    ]));
                }
                match rows.last() {
                    Some((s, _)) if rows.len() == 512 => after = [s.clone(), vec![0]].concat(),
                    _ => break,
                }
            }
            Ok(Reply::Array(out))
        }
    }
}

fn pending_summary(store: &impl KvStore, key: &[u8], g: &Open) -> Result<Reply, StoreError> {
    if g.g.pending == 0 {
        return Ok(Reply::Array(vec![Reply::Int(0), Reply::Nil, Reply::Nil, Reply::NilArray]));
    }
    let prefix = named(PEL, &g.name);
    let pel = all_rows(store, key, &prefix)?;
    let first = pel.first().map_or(Reply::Nil, |(s, _)| id_after(&prefix, s).reply());
    let last = pel.last().map_or(Reply::Nil, |(s, _)| id_after(&prefix, s).reply());
    let cprefix = named(CONSUMER, &g.name);
    let owners = all_rows(store, key, &cprefix)?
        .into_iter()
        .filter_map(|(s, v)| {
            let c = Consumer::decode(&v);
            (c.pending > 0)
                .then(|| Reply::Array(vec![Reply::bulk(&s[cprefix.len()..]), Reply::bulk(c.pending.to_string())]))
        })
        .collect();
    Ok(Reply::Array(vec![Reply::Int(g.g.pending as i64), first, last, Reply::Array(owners)]))
}

/// XINFO GROUPS.
pub(super) fn groups(store: &impl KvStore, key: &[u8], meta: &Meta) -> Result<Reply, StoreError> {
    let out = all_rows(store, key, &[GROUP])?
        .into_iter()
        .map(|(s, v)| {
            let g = Group::decode(&v);
            Reply::Map(vec![
                (Reply::bulk("name"), Reply::bulk(&s[1..])),
                (Reply::bulk("consumers"), Reply::Int(g.consumers as i64)),
                (Reply::bulk("pending"), Reply::Int(g.pending as i64)),
                (Reply::bulk("last-delivered-id"), g.last.reply()),
                (Reply::bulk("entries-read"), g.entries_read.map_or(Reply::Nil, |n| Reply::Int(n as i64))),
                (Reply::bulk("lag"), lag(meta, &g).map_or(Reply::Nil, Reply::Int)),
            ])
        })
        .collect();
    Ok(Reply::Array(out))
}

/// XINFO STREAM FULL's groups, each with at most `count` pending entries
/// (0: all) for itself and for each consumer.
pub(super) fn full(store: &impl KvStore, key: &[u8], meta: &Meta, count: u64) -> Result<Reply, StoreError> {
    let limit = if count == 0 { usize::MAX } else { count as usize };
    let mut out = Vec::new();
    for (s, v) in all_rows(store, key, &[GROUP])? {
        let name = s[1..].to_vec();
        let g = Group::decode(&v);
        let prefix = named(PEL, &name);
        let pending = rows_from(store, key, &prefix, &prefix, limit)?
            .into_iter()
            .map(|(s, v)| {
                let n = Nack::decode(&v);
                Reply::Array(vec![
                    id_after(&prefix, &s).reply(),
                    Reply::bulk(n.consumer),
                    Reply::Int(n.time as i64),
                    Reply::Int(n.count as i64),
                ])
            })
            .collect();
        let cprefix = named(CONSUMER, &name);
        let mut consumers = Vec::new();
        for (cs, cv) in all_rows(store, key, &cprefix)? {
            let cname = cs[cprefix.len()..].to_vec();
            let c = Consumer::decode(&cv);
            let oprefix = owned_prefix(&name, &cname);
            let mut owned = Vec::new();
            for (os, _) in rows_from(store, key, &oprefix, &oprefix, limit)? {
                let id = id_after(&oprefix, &os);
                let n = store.elem_get(key, &pel_sub(&name, id))?.map(|v| Nack::decode(&v));
                let (time, deliveries) = n.map_or((0, 0), |n| (n.time, n.count));
                owned.push(Reply::Array(vec![id.reply(), Reply::Int(time as i64), Reply::Int(deliveries as i64)]));
            }
            consumers.push(Reply::Map(vec![
                (Reply::bulk("name"), Reply::bulk(cname)),
                (Reply::bulk("seen-time"), Reply::Int(c.seen as i64)),
                (Reply::bulk("pel-count"), Reply::Int(c.pending as i64)),
                (Reply::bulk("pending"), Reply::Array(owned)),
            ]));
        }
        out.push(Reply::Map(vec![
            (Reply::bulk("name"), Reply::bulk(name)),
            (Reply::bulk("last-delivered-id"), g.last.reply()),
            (Reply::bulk("entries-read"), g.entries_read.map_or(Reply::Nil, |n| Reply::Int(n as i64))),
            (Reply::bulk("lag"), lag(meta, &g).map_or(Reply::Nil, Reply::Int)),
            (Reply::bulk("pel-count"), Reply::Int(g.pending as i64)),
            (Reply::bulk("pending"), Reply::Array(pending)),
            (Reply::bulk("consumers"), Reply::Array(consumers)),
        ]));
    }
    Ok(Reply::Array(out))
}

/// DUMP's view of the groups of the stream under `key`.
pub(super) fn dump(store: &impl KvStore, key: &[u8]) -> Result<Vec<GroupValue>, StoreError> {
    let mut out = Vec::new();
    for (s, v) in all_rows(store, key, &[GROUP])? {
        let name = s[1..].to_vec();
        let g = Group::decode(&v);
        let cprefix = named(CONSUMER, &name);
        let consumers: Vec<(Vec<u8>, u64)> = all_rows(store, key, &cprefix)?
            .into_iter()
            .map(|(s, v)| (s[cprefix.len()..].to_vec(), Consumer::decode(&v).seen))
            .collect();
        let places: BTreeMap<&[u8], u32> =
            consumers.iter().enumerate().map(|(i, (c, _))| (c.as_slice(), i as u32)).collect();
        let prefix = named(PEL, &name);
        let mut pending = Vec::new();
        for (s, v) in all_rows(store, key, &prefix)? {
            let n = Nack::decode(&v);
            // Every pending entry's owner is among the consumers.
            if let Some(owner) = places.get(n.consumer.as_slice()) {
                pending.push((id_after(&prefix, &s), n.time, n.count, *owner));
            }
        }
        out.push(GroupValue { name, last: g.last, entries_read: g.entries_read, pending, consumers });
    }
    Ok(out)
}

/// RESTORE's groups for the stream under `key`, which has none yet.
pub(super) fn restore(store: &mut impl KvStore, key: &[u8], groups: &[GroupValue]) -> Result<(), StoreError> {
    for gv in groups {
        let mut owned = vec![0u64; gv.consumers.len()];
        for (id, time, count, owner) in &gv.pending {
            let Some((name, _)) = gv.consumers.get(*owner as usize) else { continue };
            let nack = Nack { time: *time, count: *count, consumer: name.clone() };
            store.elem_put(key, &pel_sub(&gv.name, *id), &nack.encode())?;
            store.elem_put(key, &[owned_prefix(&gv.name, name), id.bytes().to_vec()].concat(), &[])?;
            owned[*owner as usize] += 1;
        }
        for ((name, seen), pending) in gv.consumers.iter().zip(owned) {
            let c = Consumer { seen: *seen, pending };
            store.elem_put(key, &consumer_sub(&gv.name, name), &c.encode())?;
        }
        let g = Group {
            last: gv.last,
            entries_read: gv.entries_read,
            pending: gv.pending.len() as u64,
            consumers: gv.consumers.len() as u64,
        };
        store.elem_put(key, &group_sub(&gv.name), &g.encode())?;
    }
    Ok(())
}
