//! Splitting multi-key ops over partition groups, and merging the answers.
//!
//! ```text
//!            plan_write / plan_read(op, group_of, slot_of)
//!                          │
//!   ┌───────────┬──────────┴─────────┬─────────────────┬──────────────┐
//!   Single(g)   Fanout{parts, merge} Broadcast{op,merge} Move{..}     Err(CROSSSLOT)
//!   one group   one op per group     same op, every group  cross-group RENAME
//!                    │                    │
//!                    └──── merge(&Merge, replies) ────► one Reply
//! ```
//!
//! Splitting keeps Redis semantics where they survive it: DEL/EXISTS/TOUCH
//! counts add up, MSET is per-key anyway, MGET reassembles the caller's
//! order. MSETNX is all-or-nothing, which tidal guarantees only inside one
//! slot, so a spanning MSETNX is refused like Redis Cluster refuses it.

use std::collections::BTreeMap;

use super::op::{ReadOp, WriteOp};
use super::reply::Reply;

/// How to run an op over the groups that own its keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan<G, Op> {
    /// Every key is in group `G` (or the op has one key): run as is.
    Single(G, Op),
    /// One sub-op per group, in group order; combine with `merge`.
    Fanout { parts: Vec<(G, Op)>, merge: Merge },
    /// A keyless op over the whole keyspace: run on every group, combine.
    Broadcast { op: Op, merge: Merge },
    /// RENAME/RENAMENX whose keys are in different groups. The router moves
    /// the key itself: `ReadOp::Dump{from}` on `from_group` (nil ⇒
    /// `ERR no such key`); for `nx`, `ReadOp::Exists{to}` on `to_group`
    /// (1 ⇒ reply 0); then `WriteOp::Restore{to, record}` on `to_group` and
    /// `WriteOp::Del{[from]}` on `from_group`; reply OK, or 1 for `nx`.
    Move { from_group: G, from: Vec<u8>, to_group: G, to: Vec<u8>, nx: bool },
}

/// How per-group replies combine into the client's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// Add integer replies (DEL, UNLINK, EXISTS, TOUCH, DBSIZE).
    SumInts,
    /// Every part said OK: reply OK (MSET, FLUSH).
    Ok,
    /// Concatenate array replies (KEYS).
    Concat,
    /// MGET: part `i`'s array fills the original positions `positions[i]`.
    MGet { positions: Vec<Vec<usize>> },
}

/// The error for an atomic multi-key op whose keys span groups.
pub fn cross_slot(cmd: &str) -> Reply {
    Reply::Error(format!(
        "CROSSSLOT Keys in request don't hash to the same slot ({cmd} is atomic only within one \
         partition; give the keys a common hash tag, e.g. {{user1}}:a and {{user1}}:b)"
    ))
}

/// Groups `items` by the group of their key, keeping argument order within
/// each group and remembering original positions.
fn group_by<G: Ord + Clone, T>(
    items: Vec<T>,
    key: impl Fn(&T) -> &[u8],
    group_of: &impl Fn(&[u8]) -> G,
) -> BTreeMap<G, (Vec<T>, Vec<usize>)> {
    let mut groups: BTreeMap<G, (Vec<T>, Vec<usize>)> = BTreeMap::new();
    for (i, item) in items.into_iter().enumerate() {
        let g = group_of(key(&item));
        let entry = groups.entry(g).or_default();
        entry.0.push(item);
        entry.1.push(i);
    }
    groups
}

/// Splits `items` with `build`; a single group keeps the original op.
fn split<G: Ord + Clone, T, Op>(
    op: Op,
    items: Vec<T>,
    key: impl Fn(&T) -> &[u8],
    group_of: &impl Fn(&[u8]) -> G,
    build: impl Fn(Vec<T>) -> Op,
    merge: impl FnOnce(Vec<Vec<usize>>) -> Merge,
) -> Plan<G, Op> {
    let groups = group_by(items, key, group_of);
    if groups.len() == 1 {
        let g = groups.into_keys().next().expect("one group");
        return Plan::Single(g, op);
    }
    let mut parts = Vec::with_capacity(groups.len());
    let mut positions = Vec::with_capacity(groups.len());
    for (g, (items, pos)) in groups {
        parts.push((g, build(items)));
        positions.push(pos);
    }
    Plan::Fanout { parts, merge: merge(positions) }
}

fn internal(what: &str) -> Reply {
    Reply::err(format!("internal: {what} is not planned by key"))
}

/// Plans a write. `Err` is a reply for the client (CROSSSLOT).
///
/// Atomic multi-key writes follow Redis Cluster's rule: MSETNX needs all its
/// keys in one slot, and RENAME is atomic only within one slot (across
/// slots it becomes a copy and a delete). Slots, not groups, decide it, so
/// a command behaves the same before and after a slot moves between groups.
pub fn plan_write<G: Ord + Clone>(
    op: WriteOp,
    group_of: impl Fn(&[u8]) -> G,
    slot_of: impl Fn(&[u8]) -> u32,
) -> Result<Plan<G, WriteOp>, Reply> {
    match &op {
        WriteOp::Flush => Ok(Plan::Broadcast { op, merge: Merge::Ok }),
        WriteOp::Del { keys } if !keys.is_empty() => {
            let keys = keys.clone();
            Ok(split(op, keys, |k| k, &group_of, |keys| WriteOp::Del { keys }, |_| Merge::SumInts))
        }
        WriteOp::MSet { pairs } if !pairs.is_empty() => {
            let pairs = pairs.clone();
            Ok(split(op, pairs, |(k, _)| k, &group_of, |pairs| WriteOp::MSet { pairs }, |_| Merge::Ok))
        }
        WriteOp::MSetNx { .. }
        | WriteOp::BitOp { .. }
        | WriteOp::Copy { .. }
        | WriteOp::Members { .. }
        | WriteOp::List { .. }
        | WriteOp::ZSet { .. }
        | WriteOp::Sort { .. }
        | WriteOp::Stream { .. }
            if op.keys().len() > 1 =>
        {
            let group = one_slot(&op.keys(), op.command_name(), &group_of, &slot_of)?;
            Ok(Plan::Single(group, op))
        }
        WriteOp::Rename { from, to, nx } => {
            let (fg, tg) = (group_of(from), group_of(to));
            if slot_of(from) == slot_of(to) {
                return Ok(Plan::Single(fg, op));
            }
            let (from, to, nx) = (from.clone(), to.clone(), *nx);
            Ok(Plan::Move { from_group: fg, from, to_group: tg, to, nx })
        }
        _ => match op.keys().first() {
            Some(key) => Ok(Plan::Single(group_of(key), op)),
            None => Err(internal("an empty multi-key write")),
        },
    }
}

/// Plans a read. SCAN is stateful across calls, so the router drives it
/// page by page and it is not planned here.
pub fn plan_read<G: Ord + Clone>(
    op: ReadOp,
    group_of: impl Fn(&[u8]) -> G,
    slot_of: impl Fn(&[u8]) -> u32,
) -> Result<Plan<G, ReadOp>, Reply> {
    match &op {
        ReadOp::Lcs { .. }
        | ReadOp::Members { .. }
        | ReadOp::ZSet { .. }
        | ReadOp::Sort { .. }
        | ReadOp::Stream { .. }
            if op.keys().len() > 1 =>
        {
            let group = one_slot(&op.keys(), op.command_name(), &group_of, &slot_of)?;
            Ok(Plan::Single(group, op))
        }
        ReadOp::DbSize | ReadOp::Changes => Ok(Plan::Broadcast { op, merge: Merge::SumInts }),
        ReadOp::Keys { .. } => Ok(Plan::Broadcast { op, merge: Merge::Concat }),
        ReadOp::Scan { .. } => Err(internal("SCAN")),
        ReadOp::MGet { keys } if !keys.is_empty() => {
            let keys = keys.clone();
            Ok(split(op, keys, |k| k, &group_of, |keys| ReadOp::MGet { keys }, |positions| Merge::MGet { positions }))
        }
        ReadOp::Exists { keys } if !keys.is_empty() => {
            let keys = keys.clone();
            Ok(split(op, keys, |k| k, &group_of, |keys| ReadOp::Exists { keys }, |_| Merge::SumInts))
        }
        ReadOp::Touch { keys } if !keys.is_empty() => {
            let keys = keys.clone();
            Ok(split(op, keys, |k| k, &group_of, |keys| ReadOp::Touch { keys }, |_| Merge::SumInts))
        }
        _ => match op.keys().first() {
            Some(key) => Ok(Plan::Single(group_of(key), op)),
            None => Err(internal("an empty multi-key read")),
        },
    }
}

/// The group of an op that must have every key in one slot (MSETNX,
/// BITOP, COPY, LCS), or CROSSSLOT naming `cmd`.
fn one_slot<G>(
    keys: &[&[u8]],
    cmd: &str,
    group_of: &impl Fn(&[u8]) -> G,
    slot_of: &impl Fn(&[u8]) -> u32,
) -> Result<G, Reply> {
    match (same_group(keys.iter().copied(), slot_of), keys.first()) {
        (Some(_), Some(first)) => Ok(group_of(first)),
        _ => Err(cross_slot(cmd)),
    }
}

fn same_group<'a, G: Ord>(mut keys: impl Iterator<Item = &'a [u8]>, group_of: &impl Fn(&[u8]) -> G) -> Option<G> {
    let first = group_of(keys.next()?);
    keys.all(|k| group_of(k) == first).then_some(first)
}

/// Combines per-group replies (in part order). The first error wins; a
/// reply of an unexpected shape becomes an internal error.
pub fn merge(merge: &Merge, replies: Vec<Reply>) -> Reply {
    if let Some(e) = replies.iter().find(|r| r.is_error()) {
        return e.clone();
    }
    let shape = || Reply::err("internal: unexpected reply shape from a group");
    match merge {
        Merge::SumInts => {
            let mut sum: i64 = 0;
            for r in &replies {
                let Reply::Int(n) = r else { return shape() };
                sum = sum.saturating_add(*n);
            }
            Reply::Int(sum)
        }
        Merge::Ok => {
            if replies.iter().all(|r| *r == Reply::Ok) {
                Reply::Ok
            } else {
                shape()
            }
        }
        Merge::Concat => {
            let mut all = Vec::new();
            for r in replies {
                let Reply::Array(items) = r else { return shape() };
                all.extend(items);
            }
            Reply::Array(all)
        }
        Merge::MGet { positions } => {
            if positions.len() != replies.len() {
                return shape();
            }
            let total = positions.iter().map(Vec::len).sum();
            let mut out = vec![Reply::Nil; total];
            for (pos, reply) in positions.iter().zip(replies) {
                let Reply::Array(values) = reply else { return shape() };
                if values.len() != pos.len() {
                    return shape();
                }
                for (&i, v) in pos.iter().zip(values) {
                    if i >= total {
                        return shape();
                    }
                    out[i] = v;
                }
            }
            Reply::Array(out)
        }
    }
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
