//! Streams: XADD, XRANGE, XREAD and the rest of the `X` commands that
//! need no consumer group.
//!
//! A stream is a header record under its key and, next to it, two kinds
//! of element rows:
//!
//! ```text
//!  key ──► header: length ‖ last id ‖ entries added ‖ max deleted id
//!                  ‖ first id ‖ nodes ‖ tail node
//!  key ─┬─► 0x00 ‖ id  ──► node ‖ field/value pairs        one per entry
//!       └─► 0x01 ‖ id₀ ──► prev ‖ last ‖ live ‖ total ‖ bytes   one per node
//! ```
//!
//! IDs are 16 bytes big-endian (ms, then seq), so rows lie in ID order.
//! Entries are grouped into nodes as Redis groups them into the listpacks
//! of its radix tree: an entry joins the last node until that node has
//! taken `stream-node-max-entries` entries (deleted ones count) or about
//! `stream-node-max-bytes` bytes, and a node goes when its last live entry
//! does. The nodes are what approximate trimming (`MAXLEN ~`) removes
//! whole, as in Redis, so `XADD ... MAXLEN ~ n` leaves the length Redis
//! leaves. Each node names the one before it, which is how XREVRANGE walks
//! backwards over rows the store only reads forwards.
//!
//! Unlike the other collections, a stream may stay empty: XDEL and XTRIM
//! never delete its key, and `XADD ... MAXLEN 0` creates an empty one.

use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::collection::{live, live_for_write, word, wrong_type};
use super::rdb::StreamValue;
use super::record::{Kind, Record};
use super::reply::Reply;
use super::store::{ElementRows, KvStore, StoreError};
use super::stream_group::{self, GroupRead, GroupWrite};

/// An element row: its sub-key and value.
pub(super) type Row = (Vec<u8>, Vec<u8>);

const ENTRY: u8 = 0x00;
const NODE: u8 = 0x01;

/// A stream entry's ID: milliseconds, then a sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub(super) fn bytes(self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.ms.to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    pub(super) fn from_bytes(b: &[u8]) -> StreamId {
        StreamId::at(b, 0)
    }

    /// The ID written at `at` of `b` (0-0 when absent).
    pub(super) fn at(b: &[u8], at: usize) -> StreamId {
        StreamId { ms: word(b, at), seq: word(b, at + 8) }
    }

    /// The next ID, `None` after the last.
    pub fn next(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (u64::MAX, u64::MAX) => None,
            (ms, u64::MAX) => Some(StreamId::new(ms + 1, 0)),
            (ms, seq) => Some(StreamId::new(ms, seq + 1)),
        }
    }

    /// The ID before, `None` before the first.
    pub fn prev(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (0, 0) => None,
            (ms, 0) => Some(StreamId::new(ms - 1, u64::MAX)),
            (ms, seq) => Some(StreamId::new(ms, seq - 1)),
        }
    }

    /// `ms-seq`, as [`Self::text`] writes it.
    pub fn parse(text: &[u8]) -> Option<StreamId> {
        let text = std::str::from_utf8(text).ok()?;
        let (ms, seq) = text.split_once('-')?;
        Some(StreamId::new(ms.parse().ok()?, seq.parse().ok()?))
    }

    pub fn text(self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }

    pub fn reply(self) -> Reply {
        Reply::bulk(self.text())
    }
}

/// The ID XADD was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddId {
    /// `*`: from the apply time, after the last ID.
    Auto,
    /// `ms-*`: this millisecond, the next sequence number in it.
    AutoSeq(u64),
    Exact(StreamId),
}

/// What XADD's and XTRIM's trimming keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrimBy {
    /// At most this many entries.
    MaxLen(u64),
    /// No entry below this ID.
    MinId(StreamId),
}

/// A trimming: what it keeps, whether whole nodes only (`~`), and how
/// many entries it may remove (`LIMIT`; `None` when not given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trim {
    pub by: TrimBy,
    pub approx: bool,
    pub limit: Option<u64>,
}

/// How big a node grows: CONFIG's `stream-node-max-bytes` and
/// `stream-node-max-entries` on the node that took the command, which it
/// writes into the op so that every replica groups entries alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLimits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits { max_bytes: 4096, max_entries: 100 }
    }
}

/// The largest node Redis builds (its listpacks' limit), and so the
/// largest entry.
const NODE_MAX_SIZE: u64 = 1 << 30;

/// A stream command that writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamWrite {
    /// XADD; `nomkstream` leaves a missing stream missing (reply nil).
    Add { id: AddId, fields: Vec<(Vec<u8>, Vec<u8>)>, nomkstream: bool, trim: Option<Trim>, node: NodeLimits },
    /// XTRIM: replies with how many entries went.
    Trim { trim: Trim, node: NodeLimits },
    /// XDEL: replies with how many of the IDs were entries.
    Del { ids: Vec<StreamId> },
    /// XSETID.
    SetId { last: StreamId, entries_added: Option<u64>, max_deleted: Option<StreamId> },
    /// A command on the consumer group `group` (XREADGROUP's first key).
    Group { group: Vec<u8>, op: GroupWrite },
}

/// Where XREAD reads a stream from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadFrom {
    /// Entries after this ID.
    After(StreamId),
    /// `$`: entries after the stream's last ID, so none now.
    Last,
}

/// A stream command that reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamRead {
    Len,
    /// XRANGE (`rev`: XREVRANGE) over `start..=end`; `Some(0)` answers
    /// a nil array, as Redis does.
    Range {
        start: StreamId,
        end: StreamId,
        count: Option<u64>,
        rev: bool,
    },
    /// XREAD of the op's key and `others` (all of one slot), each from
    /// its place in `from`. `woken`: the read after a blocked client was
    /// woken, which answers with the first stream that has entries only,
    /// and at most [`WOKEN_COUNT`] of them unless a count was given, as
    /// Redis serves a blocked XREAD.
    Read {
        others: Vec<Vec<u8>>,
        from: Vec<ReadFrom>,
        count: Option<u64>,
        woken: bool,
    },
    /// Internal: each stream's last ID (0-0 for a key that holds none), to
    /// fix where a blocked XREAD given `$` reads from.
    LastIds {
        others: Vec<Vec<u8>>,
    },
    /// XINFO STREAM; `full` is FULL's COUNT (0: every entry).
    Info {
        full: Option<u64>,
    },
    /// XINFO GROUPS.
    Groups,
    /// A command on the consumer group `group`.
    Group {
        group: Vec<u8>,
        op: GroupRead,
    },
}

/// How many entries a woken XREAD without COUNT answers with at most.
pub const WOKEN_COUNT: u64 = 1000;

/// How many entries XREAD or XREADGROUP answers with from each stream (0:
/// all): COUNT 0 is no limit, except for a woken client's.
pub(super) fn read_count(count: Option<u64>, woken: bool) -> u64 {
    match count {
        Some(c) if c > 0 || !woken => c,
        _ if woken => WOKEN_COUNT,
        _ => 0,
    }
}

/// The header's layout: the byte offset of each field.
mod at {
    pub const LEN: usize = 0;
    pub const LAST: usize = 8;
    pub const ADDED: usize = 24;
    pub const MAX_DELETED: usize = 32;
    pub const FIRST: usize = 48;
    pub const NODES: usize = 64;
    pub const TAIL: usize = 72;
    pub const GROUPS: usize = 88;
    pub const END: usize = 96;
}

/// A stream's header. Its length is the first word, where every
/// collection keeps its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Meta {
    rec: Record,
    pub len: u64,
    pub last: StreamId,
    pub added: u64,
    pub max_deleted: StreamId,
    /// The first live entry's ID when the stream was last changed (0-0
    /// when empty): XINFO's `recorded-first-entry-id`.
    pub first: StreamId,
    nodes: u64,
    /// The last node's first ID; 0-0 when there is no node (no entry has
    /// that ID).
    tail: StreamId,
    /// How many consumer groups it has.
    pub groups: u64,
}

impl Meta {
    pub(super) fn new() -> Meta {
        Meta::from_record(Record::collection(Kind::Stream, Vec::new(), None))
    }

    fn from_record(rec: Record) -> Meta {
        let v = &rec.value;
        let id = |at| StreamId::at(v, at);
        Meta {
            len: word(v, at::LEN),
            last: id(at::LAST),
            added: word(v, at::ADDED),
            max_deleted: id(at::MAX_DELETED),
            first: id(at::FIRST),
            nodes: word(v, at::NODES),
            tail: id(at::TAIL),
            groups: word(v, at::GROUPS),
            rec,
        }
    }

    pub(super) fn save(&self, store: &mut impl KvStore, key: &[u8]) -> Result<(), StoreError> {
        let mut value = Vec::with_capacity(at::END);
        value.extend_from_slice(&self.len.to_be_bytes());
        value.extend_from_slice(&self.last.bytes());
        value.extend_from_slice(&self.added.to_be_bytes());
        value.extend_from_slice(&self.max_deleted.bytes());
        value.extend_from_slice(&self.first.bytes());
        value.extend_from_slice(&self.nodes.to_be_bytes());
        value.extend_from_slice(&self.tail.bytes());
        value.extend_from_slice(&self.groups.to_be_bytes());
        store.put(key, &Record { value, ..self.rec.clone() })
    }
}

/// One node's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    first: StreamId,
    /// The node before (0-0: none).
    prev: StreamId,
    /// The last entry added to it (perhaps deleted since).
    last: StreamId,
    live: u64,
    /// Entries ever added to it, deleted ones included.
    total: u64,
    bytes: u64,
    /// A digest of its master entry's field names (its first entry's):
    /// an entry with the same names costs Redis only its values.
    master: u64,
}

impl Node {
    fn decode(first: StreamId, v: &[u8]) -> Node {
        Node {
            first,
            prev: StreamId::at(v, 0),
            last: StreamId::at(v, 16),
            live: word(v, 32),
            total: word(v, 40),
            bytes: word(v, 48),
            master: word(v, 56),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(&self.prev.bytes());
        v.extend_from_slice(&self.last.bytes());
        v.extend_from_slice(&self.live.to_be_bytes());
        v.extend_from_slice(&self.total.to_be_bytes());
        v.extend_from_slice(&self.bytes.to_be_bytes());
        v.extend_from_slice(&self.master.to_be_bytes());
        v
    }
}

fn sub(kind: u8, id: StreamId) -> [u8; 17] {
    let mut out = [kind; 17];
    out[1..].copy_from_slice(&id.bytes());
    out
}

fn get_node(store: &impl KvStore, key: &[u8], first: StreamId) -> Result<Option<Node>, StoreError> {
    Ok(store.elem_get(key, &sub(NODE, first))?.map(|v| Node::decode(first, &v)))
}

fn put_node(store: &mut impl KvStore, key: &[u8], node: &Node) -> Result<(), StoreError> {
    store.elem_put(key, &sub(NODE, node.first), &node.encode())
}

/// The node after `first`, if any.
fn next_node(store: &impl KvStore, key: &[u8], first: StreamId) -> Result<Option<Node>, StoreError> {
    let from = sub(NODE, first);
    let rows = store.elem_range(key, Bound::Excluded(&from[..]), Bound::Excluded(&[NODE + 1][..]), 1)?;
    Ok(rows.first().map(|(s, v)| Node::decode(StreamId::from_bytes(&s[1..]), v)))
}

/// The node that holds (or would hold) `id`: the last whose first ID is
/// at or before it.
fn node_at(store: &impl KvStore, key: &[u8], meta: &Meta, id: StreamId) -> Result<Option<Node>, StoreError> {
    let from = sub(NODE, id);
    let after = store.elem_range(key, Bound::Excluded(&from[..]), Bound::Excluded(&[NODE + 1][..]), 1)?;
    let holder = match after.first() {
        Some((_, v)) => Node::decode(StreamId::MIN, v).prev,
        None => meta.tail,
    };
    if holder == StreamId::MIN {
        return Ok(None);
    }
    get_node(store, key, holder)
}

/// Take `node` out of the chain of nodes (its entries are gone).
fn unlink(store: &mut impl KvStore, key: &[u8], meta: &mut Meta, node: &Node) -> Result<(), StoreError> {
    match next_node(store, key, node.first)? {
        Some(mut next) => {
            next.prev = node.prev;
            put_node(store, key, &next)?;
        }
        None => meta.tail = node.prev,
    }
    store.elem_delete(key, &sub(NODE, node.first))?;
    meta.nodes -= 1;
    Ok(())
}

/// An entry row's value: its node's first ID, then its pairs.
fn encode_entry(node: StreamId, fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let size: usize = fields.iter().map(|(f, v)| 8 + f.len() + v.len()).sum();
    let mut out = Vec::with_capacity(20 + size);
    out.extend_from_slice(&node.bytes());
    out.extend_from_slice(&(fields.len() as u32).to_be_bytes());
    for (f, v) in fields {
        for part in [f, v] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

fn entry_node(v: &[u8]) -> StreamId {
    StreamId::at(v, 0)
}

/// An entry's field/value pairs (after its node's ID).
fn entry_pairs(v: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let n = u32::from_be_bytes(v.get(16..20).and_then(|b| b.try_into().ok()).unwrap_or([0; 4])) as usize;
    let mut at = 20;
    let mut part = || {
        let len = u32::from_be_bytes(v.get(at..at + 4)?.try_into().ok()?) as usize;
        let p = v.get(at + 4..at + 4 + len)?.to_vec();
        at += 4 + len;
        Some(p)
    };
    let mut out = Vec::with_capacity(n.min(v.len()));
    while out.len() < n {
        let (Some(f), Some(x)) = (part(), part()) else { break };
        out.push((f, x));
    }
    out
}

/// An entry's field/value pairs as the flat array Redis answers with.
fn entry_fields(v: &[u8]) -> Vec<Reply> {
    entry_pairs(v).into_iter().flat_map(|(f, x)| [Reply::Bulk(f), Reply::Bulk(x)]).collect()
}

pub(super) fn entry_reply(sub: &[u8], v: &[u8]) -> Reply {
    Reply::Array(vec![StreamId::from_bytes(&sub[1..]).reply(), Reply::Array(entry_fields(v))])
}

/// About what Redis's listpack spends on an entry: its flags, ID deltas
/// and back-count, and each value with its length and back-length; the
/// field names too (and their count) unless they are the node's master
/// entry's. Only a node's byte limit uses it.
fn entry_bytes(fields: &[(Vec<u8>, Vec<u8>)], same_names: bool) -> u64 {
    let values: u64 = fields.iter().map(|(_, v)| v.len() as u64 + 2).sum();
    let names: u64 = if same_names { 0 } else { 2 + fields.iter().map(|(f, _)| f.len() as u64 + 2).sum::<u64>() };
    8 + values + names
}

/// FNV-1a over an entry's field names, each with its length: what tells
/// whether an entry has its node's master fields.
fn names_digest(fields: &[(Vec<u8>, Vec<u8>)]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (f, _) in fields {
        for b in (f.len() as u32).to_be_bytes().iter().chain(f.iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Entry rows of `key` with IDs in `lo..=hi`, at most `limit`.
pub(super) fn entries(
    store: &impl KvStore,
    key: &[u8],
    lo: StreamId,
    hi: StreamId,
    limit: usize,
) -> Result<ElementRows, StoreError> {
    let (lo, hi) = (sub(ENTRY, lo), sub(ENTRY, hi));
    store.elem_range(key, Bound::Included(&lo[..]), Bound::Included(&hi[..]), limit)
}

/// The first live entry's ID.
fn first_live(store: &impl KvStore, key: &[u8]) -> Result<StreamId, StoreError> {
    let rows = entries(store, key, StreamId::MIN, StreamId::MAX, 1)?;
    Ok(rows.first().map_or(StreamId::MIN, |(s, _)| StreamId::from_bytes(&s[1..])))
}

/// The last live entry's row: the last of the tail node, which always
/// holds one.
pub(super) fn last_live(store: &impl KvStore, key: &[u8], meta: &Meta) -> Result<Option<Row>, StoreError> {
    let Some(tail) = get_node(store, key, meta.tail)? else { return Ok(None) };
    Ok(entries(store, key, tail.first, tail.last, usize::MAX)?.pop())
}

/// A stream's header from `rec`: `None` for no key, the `WRONGTYPE`
/// reply for another kind.
fn as_stream(rec: Option<Record>) -> Result<Option<Meta>, Reply> {
    match rec {
        Some(r) if r.kind != Kind::Stream => Err(wrong_type()),
        other => Ok(other.map(Meta::from_record)),
    }
}

/// The stream under `key` for a write (an expired key found is deleted).
pub(super) fn open_write(
    store: &mut impl KvStore,
    key: &[u8],
    now_ms: u64,
) -> Result<Result<Option<Meta>, Reply>, StoreError> {
    Ok(as_stream(live_for_write(store, key, now_ms)?))
}

pub(super) fn open_read(
    store: &impl KvStore,
    key: &[u8],
    now_ms: u64,
) -> Result<Result<Option<Meta>, Reply>, StoreError> {
    Ok(as_stream(live(store, key, now_ms)?))
}

fn equal_or_smaller() -> Reply {
    Reply::err("The ID specified in XADD is equal or smaller than the target stream top item")
}

/// The ID XADD adds under, after `last`, at `now_ms`.
fn new_id(id: AddId, last: StreamId, now_ms: u64) -> Result<StreamId, Reply> {
    let id = match id {
        AddId::Auto if now_ms > last.ms => StreamId::new(now_ms, 0),
        AddId::Auto => last.next().ok_or_else(equal_or_smaller)?,
        AddId::AutoSeq(ms) if ms == last.ms => last.next().filter(|n| n.ms == ms).ok_or_else(equal_or_smaller)?,
        AddId::AutoSeq(ms) => StreamId::new(ms, 0),
        AddId::Exact(id) => id,
    };
    if id <= last {
        return Err(equal_or_smaller());
    }
    Ok(id)
}

/// Add an entry under `id` to the tail node, or to a new node when the
/// tail is full.
fn append(
    store: &mut impl KvStore,
    key: &[u8],
    meta: &mut Meta,
    id: StreamId,
    fields: &[(Vec<u8>, Vec<u8>)],
    limits: NodeLimits,
) -> Result<(), StoreError> {
    let raw: u64 = fields.iter().map(|(f, v)| (f.len() + v.len()) as u64).sum();
    let max_bytes = if limits.max_bytes == 0 { NODE_MAX_SIZE } else { limits.max_bytes.min(NODE_MAX_SIZE) };
    let tail = get_node(store, key, meta.tail)?
        .filter(|n| n.bytes + raw < max_bytes && (limits.max_entries == 0 || n.total < limits.max_entries));
    let names = names_digest(fields);
    let node = match tail {
        Some(mut n) => {
            n.last = id;
            n.live += 1;
            n.total += 1;
            n.bytes += entry_bytes(fields, n.master == names);
            n
        }
        None => {
            // A new node starts with its header and its master entry: the
            // first entry's field names, which later entries are compared
            // with.
            let master = 15 + fields.iter().map(|(f, _)| f.len() as u64 + 2).sum::<u64>();
            let bytes = master + entry_bytes(fields, true);
            let n = Node { first: id, prev: meta.tail, last: id, live: 1, total: 1, bytes, master: names };
            meta.tail = id;
            meta.nodes += 1;
            n
        }
    };
    put_node(store, key, &node)?;
    store.elem_put(key, &sub(ENTRY, id), &encode_entry(node.first, fields))?;
    if meta.len == 0 {
        meta.first = id;
    }
    meta.len += 1;
    meta.last = id;
    meta.added += 1;
    Ok(())
}

/// How many entries approximate trimming may remove when LIMIT is not
/// given: a hundred nodes' worth, as Redis allows.
fn default_limit(limits: NodeLimits) -> u64 {
    match limits.max_entries.saturating_mul(100) {
        0 => 10_000,
        n => n.min(1_000_000),
    }
}

/// Trim the stream as `trim` says, from its first node; how many entries
/// went. Whole nodes go first; an exact trim then removes entries from
/// the node where it stopped, an approximate one stops there.
fn trim(
    store: &mut impl KvStore,
    key: &[u8],
    meta: &mut Meta,
    trim: Trim,
    limits: NodeLimits,
) -> Result<u64, StoreError> {
    let limit = match trim.limit {
        Some(l) => l,
        None if trim.approx => default_limit(limits),
        None => 0,
    };
    let mut deleted = 0u64;
    let start = sub(NODE, StreamId::MIN);
    while let Some((s, v)) =
        store.elem_range(key, Bound::Included(&start[..]), Bound::Excluded(&[NODE + 1][..]), 1)?.pop()
    {
        let mut node = Node::decode(StreamId::from_bytes(&s[1..]), &v);
        if let TrimBy::MaxLen(max) = trim.by {
            if meta.len <= max {
                break;
            }
        }
        if limit > 0 && deleted + node.live > limit {
            break;
        }
        let whole = match trim.by {
            TrimBy::MaxLen(max) => meta.len - node.live >= max,
            TrimBy::MinId(min) => node.last < min,
        };
        if whole {
            for (s, _) in entries(store, key, node.first, node.last, usize::MAX)? {
                store.elem_delete(key, &s)?;
            }
            meta.len -= node.live;
            deleted += node.live;
            unlink(store, key, meta, &node)?;
            continue;
        }
        if trim.approx {
            break;
        }
        for (s, _) in entries(store, key, node.first, node.last, usize::MAX)? {
            let stop = match trim.by {
                TrimBy::MaxLen(max) => meta.len <= max,
                TrimBy::MinId(min) => StreamId::from_bytes(&s[1..]) >= min,
            };
            if stop {
                break;
            }
            store.elem_delete(key, &s)?;
            node.live -= 1;
            meta.len -= 1;
            deleted += 1;
        }
        // A node this emptied stays, as in Redis (its deleted entries
        // still count towards its size); an approximate trimming removes
        // it later as a whole.
        put_node(store, key, &node)?;
        break;
    }
    if deleted > 0 {
        meta.first = first_live(store, key)?;
    }
    Ok(deleted)
}

/// Delete the entry `id`; whether there was one.
fn delete_entry(store: &mut impl KvStore, key: &[u8], meta: &mut Meta, id: StreamId) -> Result<bool, StoreError> {
    let at = sub(ENTRY, id);
    let Some(v) = store.elem_get(key, &at)? else { return Ok(false) };
    store.elem_delete(key, &at)?;
    if let Some(mut node) = get_node(store, key, entry_node(&v))? {
        node.live = node.live.saturating_sub(1);
        if node.live == 0 {
            unlink(store, key, meta, &node)?;
        } else {
            put_node(store, key, &node)?;
        }
    }
    meta.len -= 1;
    Ok(true)
}

pub(super) fn apply(store: &mut impl KvStore, key: &[u8], op: &StreamWrite, now_ms: u64) -> Result<Reply, StoreError> {
    if let StreamWrite::Group { group, op } = op {
        return stream_group::apply(store, key, group, op, now_ms);
    }
    let found = match open_write(store, key, now_ms)? {
        Ok(found) => found,
        Err(reply) => return Ok(reply),
    };
    match op {
        StreamWrite::Add { id, fields, nomkstream, trim: trimming, node } => {
            if found.is_none() && *nomkstream {
                return Ok(Reply::Nil);
            }
            let mut meta = found.unwrap_or_else(Meta::new);
            if meta.last == StreamId::MAX {
                return Ok(Reply::err("The stream has exhausted the last possible ID, unable to add more items"));
            }
            let id = match new_id(*id, meta.last, now_ms) {
                Ok(id) => id,
                Err(reply) => return Ok(reply),
            };
            if fields.iter().map(|(f, v)| (f.len() + v.len()) as u64).sum::<u64>() > NODE_MAX_SIZE {
                return Ok(Reply::err("Elements are too large to be stored"));
            }
            append(store, key, &mut meta, id, fields, *node)?;
            if let Some(t) = trimming {
                trim(store, key, &mut meta, *t, *node)?;
            }
            meta.save(store, key)?;
            Ok(id.reply())
        }
        StreamWrite::Trim { trim: t, node } => {
            let Some(mut meta) = found else { return Ok(Reply::Int(0)) };
            let deleted = trim(store, key, &mut meta, *t, *node)?;
            if deleted > 0 {
                meta.save(store, key)?;
            }
            Ok(Reply::Int(deleted as i64))
        }
        StreamWrite::Del { ids } => {
            let Some(mut meta) = found else { return Ok(Reply::Int(0)) };
            let (mut deleted, mut was_first) = (0, false);
            for id in ids {
                if delete_entry(store, key, &mut meta, *id)? {
                    deleted += 1;
                    was_first |= *id == meta.first;
                    meta.max_deleted = meta.max_deleted.max(*id);
                }
            }
            if deleted > 0 {
                if meta.len == 0 {
                    meta.first = StreamId::MIN;
                } else if was_first {
                    meta.first = first_live(store, key)?;
                }
                meta.save(store, key)?;
            }
            Ok(Reply::Int(deleted))
        }
        StreamWrite::Group { .. } => unreachable!("answered above"),
        StreamWrite::SetId { last, entries_added, max_deleted } => {
            let Some(mut meta) = found else { return Ok(Reply::err("no such key")) };
            if meta.len > 0 {
                let top = last_live(store, key, &meta)?.map_or(StreamId::MIN, |(s, _)| StreamId::from_bytes(&s[1..]));
                if *last < top {
                    return Ok(Reply::err("The ID specified in XSETID is smaller than the target stream top item"));
                }
                if entries_added.is_some_and(|n| n < meta.len) {
                    return Ok(Reply::err(
                        "The entries_added specified in XSETID is smaller than the target stream length",
                    ));
                }
            }
            meta.last = *last;
            if let Some(n) = entries_added {
                meta.added = *n;
            }
            if let Some(id) = max_deleted.filter(|id| *id != StreamId::MIN) {
                meta.max_deleted = id;
            }
            meta.save(store, key)?;
            Ok(Reply::Ok)
        }
    }
}

/// Entries of `key` in `start..=end`, newest first, at most `count`
/// (0: all): node by node from the one that holds `end`, back along the
/// chain.
fn range_rev(
    store: &impl KvStore,
    key: &[u8],
    meta: &Meta,
    start: StreamId,
    end: StreamId,
    count: u64,
) -> Result<Vec<Reply>, StoreError> {
    let mut out = Vec::new();
    let mut node = node_at(store, key, meta, end)?;
    while let Some(n) = node {
        if n.last >= start {
            let rows = entries(store, key, n.first.max(start), n.last.min(end), usize::MAX)?;
            for (s, v) in rows.iter().rev() {
                if count > 0 && out.len() as u64 >= count {
                    return Ok(out);
                }
                out.push(entry_reply(s, v));
            }
        }
        if n.first <= start || n.prev == StreamId::MIN {
            break;
        }
        node = get_node(store, key, n.prev)?;
    }
    Ok(out)
}

/// Entries of `key` in `start..=end`, oldest first, at most `count` (0:
/// all).
pub(super) fn range(
    store: &impl KvStore,
    key: &[u8],
    start: StreamId,
    end: StreamId,
    count: u64,
) -> Result<Vec<Reply>, StoreError> {
    if start > end {
        return Ok(Vec::new());
    }
    let limit = if count == 0 { usize::MAX } else { count as usize };
    Ok(entries(store, key, start, end, limit)?.iter().map(|(s, v)| entry_reply(s, v)).collect())
}

pub(super) fn read(store: &impl KvStore, key: &[u8], op: &StreamRead, now_ms: u64) -> Result<Reply, StoreError> {
    if let StreamRead::Group { group, op } = op {
        return stream_group::read(store, key, group, op, now_ms);
    }
    if let StreamRead::Read { others, from, count, woken } = op {
        return xread(store, key, others, from, *count, *woken, now_ms);
    }
    if let StreamRead::LastIds { others } = op {
        let mut out = Vec::with_capacity(1 + others.len());
        for k in std::iter::once(key).chain(others.iter().map(Vec::as_slice)) {
            let last = match open_read(store, k, now_ms)? {
                Ok(Some(meta)) => meta.last,
                _ => StreamId::MIN,
            };
            out.push(last.reply());
        }
        return Ok(Reply::Array(out));
    }
    let meta = match open_read(store, key, now_ms)? {
        Ok(m) => m,
        Err(reply) => return Ok(reply),
    };
    Ok(match (op, meta) {
        (StreamRead::Len, meta) => Reply::Int(meta.map_or(0, |m| m.len as i64)),
        (StreamRead::Range { .. }, None) => Reply::Array(Vec::new()),
        (StreamRead::Range { count: Some(0), .. }, Some(_)) => Reply::NilArray,
        (StreamRead::Range { start, end, count, rev }, Some(meta)) => {
            let count = count.unwrap_or(0);
            Reply::Array(if *rev {
                if *start > *end {
                    Vec::new()
                } else {
                    range_rev(store, key, &meta, *start, *end, count)?
                }
            } else {
                range(store, key, *start, *end, count)?
            })
        }
        (StreamRead::Info { .. } | StreamRead::Groups, None) => Reply::err("no such key"),
        (StreamRead::Groups, Some(meta)) => stream_group::groups(store, key, &meta)?,
        (StreamRead::Info { full }, Some(meta)) => info(store, key, &meta, *full)?,
        (StreamRead::Read { .. } | StreamRead::LastIds { .. } | StreamRead::Group { .. }, _) => {
            unreachable!("answered above")
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn xread(
    store: &impl KvStore,
    key: &[u8],
    others: &[Vec<u8>],
    from: &[ReadFrom],
    count: Option<u64>,
    woken: bool,
    now_ms: u64,
) -> Result<Reply, StoreError> {
    let keys: Vec<&[u8]> = std::iter::once(key).chain(others.iter().map(Vec::as_slice)).collect();
    let mut metas = Vec::with_capacity(keys.len());
    for k in &keys {
        match open_read(store, k, now_ms)? {
            Ok(m) => metas.push(m),
            Err(reply) => return Ok(reply),
        }
    }
    let count = read_count(count, woken);
    let mut out = Vec::new();
    for ((k, meta), from) in keys.iter().zip(metas).zip(from) {
        let Some(meta) = meta else { continue };
        let after = match from {
            ReadFrom::After(id) => *id,
            ReadFrom::Last => meta.last,
        };
        let Some(start) = after.next() else { continue };
        let items = range(store, k, start, StreamId::MAX, count)?;
        if !items.is_empty() {
            out.push((Reply::bulk(*k), Reply::Array(items)));
            if woken {
                break;
            }
        }
    }
    Ok(if out.is_empty() { Reply::NilArray } else { Reply::Keyed(out) })
}

/// XINFO STREAM, plain or FULL (with at most `count` entries, 0: all).
fn info(store: &impl KvStore, key: &[u8], meta: &Meta, full: Option<u64>) -> Result<Reply, StoreError> {
    let text = |s: &str| Reply::bulk(s);
    let mut map = vec![
        (text("length"), Reply::Int(meta.len as i64)),
        (text("radix-tree-keys"), Reply::Int(meta.nodes as i64)),
        // tidal keeps no radix tree: a tree over that many keys has about
        // as many inner nodes again.
        (text("radix-tree-nodes"), Reply::Int((2 * meta.nodes + 1) as i64)),
        (text("last-generated-id"), meta.last.reply()),
        (text("max-deleted-entry-id"), meta.max_deleted.reply()),
        (text("entries-added"), Reply::Int(meta.added as i64)),
        (text("recorded-first-entry-id"), meta.first.reply()),
    ];
    match full {
        None => {
            let first = entries(store, key, StreamId::MIN, StreamId::MAX, 1)?.pop();
            let last = last_live(store, key, meta)?;
            let entry = |row: Option<Row>| row.map_or(Reply::Nil, |(s, v)| entry_reply(&s, &v));
            map.push((text("groups"), Reply::Int(meta.groups as i64)));
            map.push((text("first-entry"), entry(first)));
            map.push((text("last-entry"), entry(last)));
        }
        Some(count) => {
            map.push((text("entries"), Reply::Array(range(store, key, StreamId::MIN, StreamId::MAX, count)?)));
            map.push((text("groups"), stream_group::full(store, key, meta, count)?));
        }
    }
    Ok(Reply::Map(map))
}

/// DUMP's view of the stream under `key` (header `rec`): its nodes and
/// entries, its IDs and its groups.
pub(super) fn dump(store: &impl KvStore, key: &[u8], rec: Record) -> Result<StreamValue, StoreError> {
    let meta = Meta::from_record(rec);
    let mut nodes = Vec::with_capacity(meta.nodes as usize);
    let start = sub(NODE, StreamId::MIN);
    let node_rows = store.elem_range(key, Bound::Included(&start[..]), Bound::Excluded(&[NODE + 1][..]), usize::MAX)?;
    for (s, v) in node_rows {
        let node = Node::decode(StreamId::from_bytes(&s[1..]), &v);
        let rows = entries(store, key, node.first, node.last, usize::MAX)?;
        let items = rows.iter().map(|(s, v)| (StreamId::from_bytes(&s[1..]), entry_pairs(v))).collect();
        nodes.push((node.first, items));
    }
    Ok(StreamValue {
        nodes,
        length: meta.len,
        last: meta.last,
        first: meta.first,
        max_deleted: meta.max_deleted,
        added: meta.added,
        groups: stream_group::dump(store, key)?,
    })
}

/// RESTORE of a stream into the free `key`: its entries regrouped into
/// nodes of the default size, then its IDs and groups as the payload says.
pub(super) fn restore(store: &mut impl KvStore, key: &[u8], v: &StreamValue) -> Result<(), StoreError> {
    let mut meta = Meta::new();
    for (id, fields) in v.nodes.iter().flat_map(|(_, e)| e) {
        append(store, key, &mut meta, *id, fields, NodeLimits::default())?;
    }
    meta.last = v.last;
    meta.first = v.first;
    meta.max_deleted = v.max_deleted;
    meta.added = v.added;
    meta.groups = v.groups.len() as u64;
    stream_group::restore(store, key, &v.groups)?;
    meta.save(store, key)
}
