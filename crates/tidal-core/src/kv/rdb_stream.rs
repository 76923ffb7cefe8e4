//! Streams in DUMP payloads: Redis's RDB stream types, read and written.
//!
//! A stream is its nodes (each a 16-byte master ID and a listpack of
//! entries delta-encoded against it), its length and IDs, and its
//! consumer groups with their pending entries and consumers:
//!
//! ```text
//!  nodes ‖ (master id ‖ listpack)* ‖ length ‖ last id ‖ [first id ‖ max deleted id ‖ entries added]
//!  ‖ groups ‖ (name ‖ last id ‖ [entries read] ‖ PEL ‖ consumers)*
//! ```
//!
//! The bracketed parts exist from type 19 (Redis 7.0) on; type 21 (7.2)
//! adds each consumer's active time, which tidal reads and drops. tidal
//! writes type 19 in RDB version 10, which Redis 7.0 and later load.

use serde::{Deserialize, Serialize};

use super::{backlen_size, put_len, put_string, Reader, ELEMENT_COST};
use crate::kv::stream::StreamId;
use crate::kv::stream_group::estimate_read;

pub(super) const TYPE_STREAM: u8 = 15;
pub(super) const TYPE_STREAM_2: u8 = 19;
pub(super) const TYPE_STREAM_3: u8 = 21;
/// The RDB version a stream payload is written in (type 19's first).
pub(super) const STREAM_VERSION: u16 = 10;

/// An entry's fields and values.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// A stream as a payload carries it: its live entries in ID order, in
/// nodes, and what its header keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamValue {
    /// Each node's master ID and entries.
    pub nodes: Vec<(StreamId, Vec<(StreamId, Fields)>)>,
    pub length: u64,
    pub last: StreamId,
    pub first: StreamId,
    pub max_deleted: StreamId,
    pub added: u64,
    pub groups: Vec<GroupValue>,
}

/// A consumer group as a payload carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupValue {
    pub name: Vec<u8>,
    pub last: StreamId,
    pub entries_read: Option<u64>,
    /// Pending entries: ID, delivery time, deliveries, and the owner's
    /// place in `consumers`.
    pub pending: Vec<(StreamId, u64, u64, u32)>,
    /// Consumers and the times they were last seen.
    pub consumers: Vec<(Vec<u8>, u64)>,
}

impl StreamValue {
    /// What it takes once decoded: its entries' bytes and a little more
    /// for each entry and pending entry.
    pub fn size(&self) -> usize {
        let entries: usize = self
            .nodes
            .iter()
            .flat_map(|(_, e)| e)
            .map(|(_, f)| 16 + f.iter().map(|(a, b)| a.len() + b.len() + 8).sum::<usize>())
            .sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|g| g.name.len() + 40 * g.pending.len() + g.consumers.iter().map(|(c, _)| c.len() + 16).sum::<usize>())
            .sum();
        entries + groups
    }
}

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// A listpack element Redis writes as an integer.
fn int(item: &[u8]) -> Option<i64> {
    std::str::from_utf8(item).ok()?.parse().ok()
}

/// The live entries of one node's listpack `items`, whose master ID is
/// `master`; `None` for anything that does not add up, or once the
/// copies of the master entry's fields have spent `budget`.
fn node_entries(master: StreamId, items: &[Vec<u8>], budget: &mut usize) -> Option<Vec<(StreamId, Fields)>> {
    let mut it = items.iter();
    let live = u64::try_from(int(it.next()?)?).ok()?;
    let deleted = u64::try_from(int(it.next()?)?).ok()?;
    let n = usize::try_from(int(it.next()?)?).ok()?;
    let mut master_fields = Vec::with_capacity(n.min(items.len()));
    for _ in 0..n {
        master_fields.push(it.next()?.clone());
    }
    if int(it.next()?)? != 0 {
        return None;
    }
    let (mut out, mut dead) = (Vec::new(), 0u64);
    while it.len() > 0 {
        let flags = int(it.next()?)?;
        let id = StreamId::new(
            master.ms.wrapping_add(int(it.next()?)? as u64),
            master.seq.wrapping_add(int(it.next()?)? as u64),
        );
        let same = flags & FLAG_SAMEFIELDS != 0;
        let fields: Fields = if same {
            // Each entry gets its own copy of the master's field names.
            let copies: usize = master_fields.iter().map(|f| f.len() + ELEMENT_COST).sum();
            match budget.checked_sub(copies).filter(|left| *left > 0) {
                Some(left) => *budget = left,
                None => {
                    // Spent: the decoder answers TooLarge.
                    *budget = 0;
                    return None;
                }
            }
            master_fields.iter().map(|f| Some((f.clone(), it.next()?.clone()))).collect::<Option<_>>()?
        } else {
            let m = usize::try_from(int(it.next()?)?).ok()?;
            (0..m).map(|_| Some((it.next()?.clone(), it.next()?.clone()))).collect::<Option<_>>()?
        };
        let lp_count = int(it.next()?)?;
        let want = fields.len() as i64 + 3 + if same { 0 } else { fields.len() as i64 + 1 };
        if lp_count != want || fields.is_empty() || id == StreamId::MIN {
            return None;
        }
        if flags & FLAG_DELETED != 0 {
            dead += 1;
        } else {
            out.push((id, fields));
        }
    }
    (out.len() as u64 == live && dead == deleted && live + dead > 0).then_some(out)
}

impl Reader<'_> {
    fn id_pair(&mut self) -> Option<StreamId> {
        Some(StreamId::new(self.len()? as u64, self.len()? as u64))
    }

    fn raw_id(&mut self) -> Option<StreamId> {
        Some(StreamId::from_bytes(self.take(16)?))
    }

    fn millis(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }

    /// A stream of RDB type `kind` (15, 19 or 21), checked whole: IDs in
    /// order, counts that agree, every pending entry owned by one consumer.
    pub(super) fn stream(&mut self, kind: u8) -> Option<StreamValue> {
        let n = self.count()?;
        let mut nodes = Vec::with_capacity(n);
        let mut prev: Option<StreamId> = None;
        for _ in 0..n {
            let key = self.plain_string()?;
            if key.len() != 16 {
                return None;
            }
            let master = StreamId::from_bytes(&key);
            let items = self.blob(super::listpack)?;
            let entries = node_entries(master, &items, &mut self.budget)?;
            for (id, _) in &entries {
                if prev.is_some_and(|p| *id <= p) || *id < master {
                    return None;
                }
                prev = Some(*id);
            }
            nodes.push((master, entries));
        }
        let length = self.len()? as u64;
        let last = self.id_pair()?;
        let live = nodes.iter().map(|(_, e)| e.len() as u64).sum::<u64>();
        if live != length || prev.is_some_and(|p| p > last) {
            return None;
        }
        let first_live = nodes.iter().flat_map(|(_, e)| e.first()).next().map_or(StreamId::MIN, |(id, _)| *id);
        let (first, max_deleted, added) = if kind == TYPE_STREAM {
            (first_live, StreamId::MIN, length)
        } else {
            (self.id_pair()?, self.id_pair()?, self.len()? as u64)
        };
        let mut v = StreamValue { nodes, length, last, first, max_deleted, added, groups: Vec::new() };
        let groups = self.count()?;
        for _ in 0..groups {
            let name = self.string()?;
            let last = self.id_pair()?;
            let entries_read = if kind == TYPE_STREAM {
                estimate_read(v.added, v.length, v.last, v.first, v.max_deleted, last)
            } else {
                Some(self.len()? as u64).filter(|n| *n != u64::MAX)
            };
            let mut pending: Vec<(StreamId, u64, u64, Option<u32>)> = Vec::new();
            for _ in 0..self.count()? {
                let id = self.raw_id()?;
                let time = self.millis()?;
                let count = self.len()? as u64;
                if pending.last().is_some_and(|(p, ..)| *p >= id) {
                    return None;
                }
                pending.push((id, time, count, None));
            }
            let mut consumers: Vec<(Vec<u8>, u64)> = Vec::new();
            for _ in 0..self.count()? {
                let cname = self.string()?;
                let seen = self.millis()?;
                if kind == TYPE_STREAM_3 {
                    self.millis()?;
                }
                let me = u32::try_from(consumers.len()).ok()?;
                for _ in 0..self.count()? {
                    let id = self.raw_id()?;
                    let at = pending.binary_search_by(|(p, ..)| p.cmp(&id)).ok()?;
                    if pending[at].3.replace(me).is_some() {
                        return None;
                    }
                }
                if consumers.iter().any(|(c, _)| *c == cname) {
                    return None;
                }
                consumers.push((cname, seen));
            }
            let pending =
                pending.into_iter().map(|(id, t, n, owner)| Some((id, t, n, owner?))).collect::<Option<_>>()?;
            if v.groups.iter().any(|g| g.name == name) {
                return None;
            }
            v.groups.push(GroupValue { name, last, entries_read, pending, consumers });
        }
        Some(v)
    }
}

/// A listpack entry's length `l`, written so that it reads backwards 7
/// bits a byte (Redis's `lpEncodeBacklen`), in as many bytes as the reader
/// skips: the first without the high bit, the others with it.
fn backlen(l: usize) -> Vec<u8> {
    let n = backlen_size(l);
    (0..n).rev().map(|i| ((l >> (7 * i)) & 127) as u8 | if i == n - 1 { 0 } else { 128 }).collect()
}

/// A listpack of `items`, each an integer or a string.
struct Listpack {
    body: Vec<u8>,
    count: usize,
}

impl Listpack {
    fn new() -> Listpack {
        Listpack { body: Vec::new(), count: 0 }
    }

    fn entry(&mut self, encoded: &[u8]) {
        self.body.extend_from_slice(encoded);
        self.body.extend_from_slice(&backlen(encoded.len()));
        self.count += 1;
    }

    fn int(&mut self, v: i64) {
        let mut e = Vec::with_capacity(9);
        if (0..=127).contains(&v) {
            e.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u16) & 0x1fff;
            e.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
        } else if let Ok(v) = i16::try_from(v) {
            e.push(0xf1);
            e.extend_from_slice(&v.to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            e.push(0xf2);
            e.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if let Ok(v) = i32::try_from(v) {
            e.push(0xf3);
            e.extend_from_slice(&v.to_le_bytes());
        } else {
            e.push(0xf4);
            e.extend_from_slice(&v.to_le_bytes());
        }
        self.entry(&e);
    }

    fn string(&mut self, s: &[u8]) {
        let mut e = Vec::with_capacity(s.len() + 5);
        if s.len() < 64 {
            e.push(0x80 | s.len() as u8);
        } else if s.len() < 4096 {
            e.extend_from_slice(&[0xe0 | (s.len() >> 8) as u8, s.len() as u8]);
        } else {
            e.push(0xf0);
            e.extend_from_slice(&(s.len() as u32).to_le_bytes());
        }
        e.extend_from_slice(s);
        self.entry(&e);
    }

    fn finish(self) -> Vec<u8> {
        let total = 6 + self.body.len() + 1;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(self.count.min(65_535) as u16).to_le_bytes());
        out.extend_from_slice(&self.body);
        out.push(0xff);
        out
    }
}

/// One node's listpack: its master entry (the first entry's fields), then
/// each entry against it.
fn node_listpack(master: StreamId, entries: &[(StreamId, Fields)]) -> Vec<u8> {
    let mut lp = Listpack::new();
    let master_fields: Vec<&[u8]> =
        entries.first().map_or(Vec::new(), |(_, f)| f.iter().map(|(k, _)| k.as_slice()).collect());
    lp.int(entries.len() as i64);
    lp.int(0);
    lp.int(master_fields.len() as i64);
    for f in &master_fields {
        lp.string(f);
    }
    lp.int(0);
    for (id, fields) in entries {
        let same = fields.len() == master_fields.len() && fields.iter().zip(&master_fields).all(|((k, _), m)| k == m);
        lp.int(if same { FLAG_SAMEFIELDS } else { 0 });
        lp.int(id.ms.wrapping_sub(master.ms) as i64);
        lp.int(id.seq.wrapping_sub(master.seq) as i64);
        if same {
            for (_, v) in fields {
                lp.string(v);
            }
            lp.int(fields.len() as i64 + 3);
        } else {
            lp.int(fields.len() as i64);
            for (k, v) in fields {
                lp.string(k);
                lp.string(v);
            }
            lp.int(2 * fields.len() as i64 + 4);
        }
    }
    lp.finish()
}

/// Write `v` as RDB type 19 (its type byte included).
pub(super) fn encode(out: &mut Vec<u8>, v: &StreamValue) {
    out.push(TYPE_STREAM_2);
    let nodes: Vec<_> = v.nodes.iter().filter(|(_, e)| !e.is_empty()).collect();
    put_len(out, nodes.len() as u64);
    for (master, entries) in nodes {
        put_string(out, &master.bytes());
        put_string(out, &node_listpack(*master, entries));
    }
    put_len(out, v.length);
    for id in [v.last, v.first, v.max_deleted] {
        put_len(out, id.ms);
        put_len(out, id.seq);
    }
    put_len(out, v.added);
    put_len(out, v.groups.len() as u64);
    for g in &v.groups {
        put_string(out, &g.name);
        put_len(out, g.last.ms);
        put_len(out, g.last.seq);
        put_len(out, g.entries_read.unwrap_or(u64::MAX));
        put_len(out, g.pending.len() as u64);
        for (id, time, count, _) in &g.pending {
            out.extend_from_slice(&id.bytes());
            out.extend_from_slice(&time.to_le_bytes());
            put_len(out, *count);
        }
        let mut owned: Vec<Vec<StreamId>> = vec![Vec::new(); g.consumers.len()];
        for (id, .., owner) in &g.pending {
            if let Some(ids) = owned.get_mut(*owner as usize) {
                ids.push(*id);
            }
        }
        put_len(out, g.consumers.len() as u64);
        for ((name, seen), ids) in g.consumers.iter().zip(owned) {
            put_string(out, name);
            out.extend_from_slice(&seen.to_le_bytes());
            put_len(out, ids.len() as u64);
            for id in ids {
                out.extend_from_slice(&id.bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backlen;

    #[test]
    fn back_lengths_are_redis_s_bytes() {
        assert_eq!(backlen(127), [127]);
        assert_eq!(backlen(128), [1, 128]);
        assert_eq!(backlen(16_382), [127, 254]);
        assert_eq!(backlen(16_383), [0, 255, 255]);
        assert_eq!(backlen(2_097_151), [0, 255, 255, 255]);
    }
}
