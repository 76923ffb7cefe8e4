//! Sets: SADD and the rest of the `S` commands.
//!
//! A set is a collection header (its size, then [`HighWater`]) and one
//! empty element row per member, stored under [`member_sub`] of the
//! member. Commands over
//! several sets (SINTER, SMOVE, the STORE forms) need all their keys in
//! one slot, as in Redis Cluster.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::collection::{
    elements, extra_of, for_each_element, live, member_of, member_sub, open, open_for_write, pick, remove,
    scan_members, wrong_type, Header,
};
use super::command::{positive, take, Command};
use super::glob::glob_match;
use super::hash::{rand_count, scan_args, scan_reply};
use super::integer::parse_i64;
use super::op::{ReadOp, WriteOp};
use super::record::{Kind, Record};
use super::reply::Reply;
use super::store::{KvStore, StoreError};

/// SINTER, SUNION or SDIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetAlgebra {
    Inter,
    Union,
    Diff,
}

/// A change to one set (`key`), or to a destination from sets of its slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetWrite {
    Add {
        members: Vec<Vec<u8>>,
    },
    Rem {
        members: Vec<Vec<u8>>,
    },
    /// SPOP: one member (`count: None`, a bulk reply) or up to `count`.
    Pop {
        count: Option<u64>,
        seed: u64,
    },
    /// SMOVE `key` → `dest`.
    Move {
        dest: Vec<u8>,
        member: Vec<u8>,
    },
    /// SINTERSTORE / SUNIONSTORE / SDIFFSTORE into `key` from `sources`.
    Store {
        op: SetAlgebra,
        sources: Vec<Vec<u8>>,
    },
}

/// A query of one set, or of several sets of one slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetRead {
    Members,
    IsMember {
        member: Vec<u8>,
    },
    MIsMember {
        members: Vec<Vec<u8>>,
    },
    Card,
    /// SRANDMEMBER, counted like HRANDFIELD.
    RandMember {
        count: Option<i64>,
        seed: u64,
    },
    Scan {
        cursor: u64,
        count: usize,
        pattern: Option<Vec<u8>>,
    },
    /// SINTER / SUNION / SDIFF of `key` and `others`.
    Algebra {
        op: SetAlgebra,
        others: Vec<Vec<u8>>,
    },
    /// SINTERCARD of `key` and `others`, counting up to `limit` (0: all).
    InterCard {
        others: Vec<Vec<u8>>,
        limit: u64,
    },
}

/// Whether every member of the set `key` is a canonical 64-bit integer
/// (what Redis keeps as an intset).
pub(super) fn all_integers(store: &impl KvStore, key: &[u8]) -> Result<bool, StoreError> {
    let mut all = true;
    // parse_i64 takes only canonical text.
    for_each_element(store, key, |sub, _| all &= parse_i64(member_of(sub)).is_some())?;
    Ok(all)
}

type Members = BTreeSet<Vec<u8>>;

/// The members of the set `key`; `Err` is WRONGTYPE.
fn members_of(store: &impl KvStore, key: &[u8], now_ms: u64) -> Result<Result<Option<Members>, Reply>, StoreError> {
    Ok(match open(store, key, now_ms, Kind::Set)? {
        Err(reply) => Err(reply),
        Ok(None) => Ok(None),
        Ok(Some(_)) => Ok(Some(elements(store, key)?.into_iter().map(|(sub, _)| member_of(&sub).to_vec()).collect())),
    })
}

/// The result of `op` over `keys`. Like Redis 7.0, every key's type is
/// checked before any result: a missing key is an empty set.
fn algebra(
    store: &impl KvStore,
    op: SetAlgebra,
    keys: &[&[u8]],
    now_ms: u64,
) -> Result<Result<Members, Reply>, StoreError> {
    let mut sets = Vec::with_capacity(keys.len());
    for key in keys {
        match members_of(store, key, now_ms)? {
            Err(reply) => return Ok(Err(reply)),
            Ok(s) => sets.push(s.unwrap_or_default()),
        }
    }
    let mut sets = sets.into_iter();
    let mut acc = sets.next().unwrap_or_default();
    for s in sets {
        acc = match op {
            SetAlgebra::Inter => acc.intersection(&s).cloned().collect(),
            SetAlgebra::Union => acc.union(&s).cloned().collect(),
            SetAlgebra::Diff => acc.difference(&s).cloned().collect(),
        };
    }
    Ok(Ok(acc))
}

/// What a set's header keeps of its past, in the word after its size:
/// the most members it held, and whether a member that is not an integer
/// ever joined it. Redis converts a set from `intset` to `hashtable` at
/// either and never back; OBJECT ENCODING reads these to do the same. A
/// header without the word (written before it existed) has no past.
pub(super) struct HighWater;

impl HighWater {
    const NON_INTEGER: i64 = 1 << 62;

    /// Note that `h` grew, by at least one member that is not an integer
    /// when `non_integer`.
    fn grew(h: &mut Header, non_integer: bool) {
        let most = (h.extra & !Self::NON_INTEGER).max(h.len as i64);
        let flag = if non_integer || h.extra & Self::NON_INTEGER != 0 { Self::NON_INTEGER } else { 0 };
        h.extra = most | flag;
    }

    /// Whether Redis would have left `intset` for good: the set held more
    /// than `limit` members, or a member that is not an integer.
    pub(super) fn left_intset(rec: &Record, limit: u64) -> bool {
        let extra = extra_of(rec);
        extra & Self::NON_INTEGER != 0 || (extra & !Self::NON_INTEGER) as u64 > limit
    }
}

fn add_members(store: &mut impl KvStore, key: &[u8], h: &mut Header, members: &[Vec<u8>]) -> Result<i64, StoreError> {
    let mut added = 0;
    let mut non_integer = false;
    for m in members {
        let sub = member_sub(m);
        // A new set has no members to look up.
        if h.len == 0 || store.elem_get(key, &sub)?.is_none() {
            store.elem_put(key, &sub, b"")?;
            h.len += 1;
            added += 1;
            non_integer |= parse_i64(m).is_none();
        }
    }
    if added > 0 {
        HighWater::grew(h, non_integer);
    }
    Ok(added)
}

fn bulk_members(members: impl IntoIterator<Item = Vec<u8>>) -> Vec<Reply> {
    members.into_iter().map(Reply::Bulk).collect()
}

pub(super) fn apply(store: &mut impl KvStore, key: &[u8], op: &SetWrite, now_ms: u64) -> Result<Reply, StoreError> {
    if let SetWrite::Store { op, sources } = op {
        let keys: Vec<&[u8]> = sources.iter().map(Vec::as_slice).collect();
        let result = typed!(algebra(&*store, *op, &keys, now_ms)?);
        if let Some(old) = store.get(key)? {
            remove(store, key, &old)?;
        }
        let mut h = Header::new(Kind::Set);
        let members: Vec<Vec<u8>> = result.into_iter().collect();
        add_members(store, key, &mut h, &members)?;
        h.save(store, key)?;
        return Ok(Reply::Int(h.len as i64));
    }
    if let SetWrite::Move { dest, member } = op {
        return move_member(store, key, dest, member, now_ms);
    }
    let mut h = typed!(open_for_write(store, key, now_ms, Kind::Set)?);
    let reply = match op {
        SetWrite::Add { members } => match add_members(store, key, &mut h, members)? {
            // Nothing new: the set is untouched, and a WATCH on it holds.
            0 => return Ok(Reply::Int(0)),
            added => Reply::Int(added),
        },
        SetWrite::Rem { members } => {
            let mut removed = 0;
            for m in members {
                let sub = member_sub(m);
                if store.elem_get(key, &sub)?.is_some() {
                    store.elem_delete(key, &sub)?;
                    h.len -= 1;
                    removed += 1;
                }
            }
            if removed == 0 {
                return Ok(Reply::Int(0));
            }
            Reply::Int(removed)
        }
        SetWrite::Pop { count, seed } => {
            let n = count.unwrap_or(1);
            let rows = pick(&*store, key, h.len, n, true, *seed)?;
            for (sub, _) in &rows {
                store.elem_delete(key, sub)?;
                h.len -= 1;
            }
            let taken = !rows.is_empty();
            let popped = rows.into_iter().map(|(sub, _)| member_of(&sub).to_vec());
            let reply = match count {
                None => Reply::bulk_or_nil(popped.into_iter().next()),
                Some(_) => Reply::Array(bulk_members(popped)),
            };
            if !taken {
                return Ok(reply);
            }
            reply
        }
        SetWrite::Move { .. } | SetWrite::Store { .. } => unreachable!("answered above"),
    };
    h.save(store, key)?;
    Ok(reply)
}

fn move_member(
    store: &mut impl KvStore,
    src: &[u8],
    dest: &[u8],
    member: &[u8],
    now_ms: u64,
) -> Result<Reply, StoreError> {
    // Redis' order: a missing source first, then both types.
    let mut from = typed!(open_for_write(store, src, now_ms, Kind::Set)?);
    if from.len == 0 {
        return Ok(Reply::Int(0));
    }
    let to = live(&*store, dest, now_ms)?;
    if to.as_ref().is_some_and(|r| r.kind != Kind::Set) {
        return Ok(wrong_type());
    }
    let sub = member_sub(member);
    if store.elem_get(src, &sub)?.is_none() {
        return Ok(Reply::Int(0));
    }
    if src == dest {
        return Ok(Reply::Int(1));
    }
    store.elem_delete(src, &sub)?;
    from.len -= 1;
    from.save(store, src)?;
    let mut to = typed!(open_for_write(store, dest, now_ms, Kind::Set)?);
    // A member the destination already holds leaves it untouched, and a
    // WATCH on it holds, as in Redis.
    if add_members(store, dest, &mut to, &[member.to_vec()])? > 0 {
        to.save(store, dest)?;
    }
    Ok(Reply::Int(1))
}

pub(super) fn read(store: &impl KvStore, key: &[u8], op: &SetRead, now_ms: u64) -> Result<Reply, StoreError> {
    match op {
        SetRead::Algebra { op, others } => {
            let keys: Vec<&[u8]> = std::iter::once(key).chain(others.iter().map(Vec::as_slice)).collect();
            let result = typed!(algebra(store, *op, &keys, now_ms)?);
            return Ok(Reply::Set(bulk_members(result)));
        }
        SetRead::InterCard { others, limit } => {
            let keys: Vec<&[u8]> = std::iter::once(key).chain(others.iter().map(Vec::as_slice)).collect();
            let result = typed!(algebra(store, SetAlgebra::Inter, &keys, now_ms)?);
            let n = result.len() as u64;
            return Ok(Reply::Int(if *limit == 0 { n } else { n.min(*limit) } as i64));
        }
        _ => {}
    }
    let Some(h) = typed!(open(store, key, now_ms, Kind::Set)?) else {
        return Ok(match op {
            SetRead::Members => Reply::Set(Vec::new()),
            SetRead::IsMember { .. } | SetRead::Card => Reply::Int(0),
            SetRead::MIsMember { members } => Reply::Array(vec![Reply::Int(0); members.len()]),
            SetRead::RandMember { count: None, .. } => Reply::Nil,
            SetRead::RandMember { .. } => Reply::Array(Vec::new()),
            SetRead::Scan { .. } => scan_reply(0, Vec::new()),
            SetRead::Algebra { .. } | SetRead::InterCard { .. } => unreachable!("answered above"),
        });
    };
    let has = |m: &[u8]| -> Result<bool, StoreError> { Ok(store.elem_get(key, &member_sub(m))?.is_some()) };
    Ok(match op {
        SetRead::Members => {
            let rows = elements(store, key)?;
            Reply::Set(bulk_members(rows.into_iter().map(|(sub, _)| member_of(&sub).to_vec())))
        }
        SetRead::IsMember { member } => Reply::Int(i64::from(has(member)?)),
        SetRead::MIsMember { members } => {
            let mut out = Vec::with_capacity(members.len());
            for m in members {
                out.push(Reply::Int(i64::from(has(m)?)));
            }
            Reply::Array(out)
        }
        SetRead::Card => Reply::Int(h.len as i64),
        SetRead::RandMember { count, seed } => {
            let (n, distinct) = count.map_or((1, true), |c| (c.unsigned_abs(), c > 0));
            let rows = pick(store, key, h.len, n, distinct, *seed)?;
            let members = rows.into_iter().map(|(sub, _)| member_of(&sub).to_vec());
            match count {
                None => Reply::bulk_or_nil(members.into_iter().next()),
                Some(_) => Reply::Array(bulk_members(members)),
            }
        }
        SetRead::Scan { cursor, count, pattern } => {
            let (next, rows) = scan_members(store, key, *cursor, *count)?;
            let items = rows
                .into_iter()
                .map(|(sub, _)| member_of(&sub).to_vec())
                .filter(|m| pattern.as_ref().is_none_or(|p| glob_match(p, m)))
                .map(Reply::Bulk)
                .collect();
            scan_reply(next, items)
        }
        SetRead::Algebra { .. } | SetRead::InterCard { .. } => unreachable!("answered above"),
    })
}

type Args = Vec<Vec<u8>>;
type Parsed = Result<Command, Reply>;

fn write(mut a: Args, op: impl FnOnce(&mut Args) -> Result<SetWrite, Reply>) -> Parsed {
    let op = op(&mut a)?;
    Ok(Command::Write(WriteOp::Members { key: std::mem::take(&mut a[1]), op }))
}

fn read_op(mut a: Args, op: impl FnOnce(&mut Args) -> Result<SetRead, Reply>) -> Parsed {
    let op = op(&mut a)?;
    Ok(Command::Read(ReadOp::Members { key: std::mem::take(&mut a[1]), op }))
}

pub(super) fn sadd(a: Args) -> Parsed {
    write(a, |a| Ok(SetWrite::Add { members: a.drain(2..).collect() }))
}

pub(super) fn srem(a: Args) -> Parsed {
    write(a, |a| Ok(SetWrite::Rem { members: a.drain(2..).collect() }))
}

pub(super) fn spop(a: Args) -> Parsed {
    write(a, |a| {
        let count = match a.len() {
            2 => None,
            3 => Some(positive(&a[2])?),
            _ => return Err(Reply::syntax()),
        };
        Ok(SetWrite::Pop { count, seed: 0 })
    })
}

pub(super) fn smove(mut a: Args) -> Parsed {
    let (dest, member) = (take(&mut a, 2), take(&mut a, 3));
    Ok(Command::Write(WriteOp::Members { key: take(&mut a, 1), op: SetWrite::Move { dest, member } }))
}

fn store_form(op: SetAlgebra) -> impl FnOnce(Args) -> Parsed {
    move |a| write(a, |a| Ok(SetWrite::Store { op, sources: a.drain(2..).collect() }))
}

pub(super) fn sinterstore(a: Args) -> Parsed {
    store_form(SetAlgebra::Inter)(a)
}

pub(super) fn sunionstore(a: Args) -> Parsed {
    store_form(SetAlgebra::Union)(a)
}

pub(super) fn sdiffstore(a: Args) -> Parsed {
    store_form(SetAlgebra::Diff)(a)
}

pub(super) fn smembers(a: Args) -> Parsed {
    read_op(a, |_| Ok(SetRead::Members))
}

pub(super) fn sismember(a: Args) -> Parsed {
    read_op(a, |a| Ok(SetRead::IsMember { member: take(a, 2) }))
}

pub(super) fn smismember(a: Args) -> Parsed {
    read_op(a, |a| Ok(SetRead::MIsMember { members: a.drain(2..).collect() }))
}

pub(super) fn scard(a: Args) -> Parsed {
    read_op(a, |_| Ok(SetRead::Card))
}

pub(super) fn srandmember(a: Args) -> Parsed {
    read_op(a, |a| {
        let count = match a.len() {
            2 => None,
            3 => Some(rand_count(&a[2], false)?),
            _ => return Err(Reply::syntax()),
        };
        Ok(SetRead::RandMember { count, seed: 0 })
    })
}

pub(super) fn sscan(a: Args) -> Parsed {
    read_op(a, |a| {
        let (cursor, count, pattern) = scan_args(a)?;
        Ok(SetRead::Scan { cursor, count, pattern })
    })
}

fn algebra_form(op: SetAlgebra) -> impl FnOnce(Args) -> Parsed {
    move |a| read_op(a, |a| Ok(SetRead::Algebra { op, others: a.drain(2..).collect() }))
}

pub(super) fn sinter(a: Args) -> Parsed {
    algebra_form(SetAlgebra::Inter)(a)
}

pub(super) fn sunion(a: Args) -> Parsed {
    algebra_form(SetAlgebra::Union)(a)
}

pub(super) fn sdiff(a: Args) -> Parsed {
    algebra_form(SetAlgebra::Diff)(a)
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`.
pub(super) fn sintercard(mut a: Args) -> Parsed {
    let n = parse_i64(&a[1]).ok_or_else(|| Reply::err("numkeys should be greater than 0"))?;
    if n < 1 {
        return Err(Reply::err("numkeys should be greater than 0"));
    }
    let n = n as usize;
    if n > a.len() - 2 {
        return Err(Reply::err("Number of keys can't be greater than number of args"));
    }
    let mut limit = 0u64;
    let mut i = 2 + n;
    while i < a.len() {
        if a[i].eq_ignore_ascii_case(b"LIMIT") && i + 1 < a.len() {
            let l = parse_i64(&a[i + 1]).ok_or_else(|| Reply::err("LIMIT can't be negative"))?;
            limit = u64::try_from(l).map_err(|_| Reply::err("LIMIT can't be negative"))?;
            i += 2;
        } else {
            return Err(Reply::syntax());
        }
    }
    let mut keys: Vec<Vec<u8>> = a.drain(2..2 + n).collect();
    let key = keys.remove(0);
    Ok(Command::Read(ReadOp::Members { key, op: SetRead::InterCard { others: keys, limit } }))
}

#[cfg(test)]
#[path = "set_tests.rs"]
mod tests;
