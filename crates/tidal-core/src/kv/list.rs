//! Lists: LPUSH and the rest of the `L` commands (their blocking forms
//! are in `blocking`).
//!
//! A list is a collection header (its length, and its head: the position
//! of its first element) and one element row per element, under the
//! element's position (an `i64` in an order-keeping 8-byte form). The
//! elements sit at positions `head .. head + len`: a push at the left
//! takes `head - 1`, at the right `head + len`, so both ends are O(1), and
//! an index is a point lookup. Removing or inserting inside the list
//! renumbers the elements after that point.

use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::collection::{live, open, open_for_write, wrong_type, Header};
use super::command::{int, positive, Command};
use super::integer::parse_i64;
use super::op::{ReadOp, WriteOp};
use super::record::Kind;
use super::reply::Reply;
use super::store::{KvStore, StoreError};

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum End {
    Left,
    Right,
}

/// A change to one list (`key`), or a move from it to another of its slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListWrite {
    /// LPUSH/RPUSH, and their X forms (`existing`: only onto a list).
    Push {
        end: End,
        values: Vec<Vec<u8>>,
        existing: bool,
    },
    /// LPOP/RPOP: one element (`count: None`, a bulk reply) or up to
    /// `count` (an array).
    Pop {
        end: End,
        count: Option<u64>,
    },
    Set {
        index: i64,
        value: Vec<u8>,
    },
    Trim {
        start: i64,
        stop: i64,
    },
    /// LREM: `count` > 0 from the head, < 0 from the tail, 0 all.
    Rem {
        count: i64,
        value: Vec<u8>,
    },
    Insert {
        after: bool,
        pivot: Vec<u8>,
        value: Vec<u8>,
    },
    /// LMOVE / RPOPLPUSH from `key` to `dest`.
    Move {
        dest: Vec<u8>,
        from: End,
        to: End,
    },
    /// LMPOP: from the first of `key` and `others` that is not empty.
    MPop {
        others: Vec<Vec<u8>>,
        end: End,
        count: u64,
    },
    /// BLPOP/BRPOP's pop: one element from the first of `key` and
    /// `others` that is not empty, answered as `[key, element]`.
    FirstPop {
        others: Vec<Vec<u8>>,
        end: End,
    },
}

/// A query of one list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListRead {
    Len,
    Index {
        index: i64,
    },
    Range {
        start: i64,
        stop: i64,
    },
    /// LPOS: matches of `value` from the `rank`-th (negative: from the
    /// tail), up to `count` of them (`None`: one, as a plain reply; 0:
    /// all), looking at no more than `maxlen` elements (0: all).
    Pos {
        value: Vec<u8>,
        rank: i64,
        count: Option<u64>,
        maxlen: u64,
    },
}

/// A position as an element row's sub-key, in an order that sorts like
/// the numbers.
fn sub(pos: i64) -> [u8; 8] {
    ((pos as u64) ^ (1 << 63)).to_be_bytes()
}

/// The position of element `i` (0 = the head).
fn at(h: &Header, i: i64) -> i64 {
    h.extra + i
}

/// `start..=stop` of a list of `len` clamped the Redis way (negative counts
/// from the end), or `None` when empty.
fn clamp(start: i64, stop: i64, len: i64) -> Option<(i64, i64)> {
    let start = if start < 0 { (len + start).max(0) } else { start };
    let stop = if stop < 0 { len + stop } else { stop.min(len - 1) };
    (start <= stop && start < len).then_some((start, stop))
}

/// Elements `from..=to` (indexes into the list), in order.
fn slice(store: &impl KvStore, key: &[u8], h: &Header, from: i64, to: i64) -> Result<Vec<Vec<u8>>, StoreError> {
    if from > to {
        return Ok(Vec::new());
    }
    let (lo, hi) = (sub(at(h, from)), sub(at(h, to)));
    let rows = store.elem_range(key, Bound::Included(&lo[..]), Bound::Included(&hi[..]), (to - from + 1) as usize)?;
    Ok(rows.into_iter().map(|(_, v)| v).collect())
}

pub(super) fn push(
    store: &mut impl KvStore,
    key: &[u8],
    h: &mut Header,
    end: End,
    value: &[u8],
) -> Result<(), StoreError> {
    let pos = match end {
        End::Left => {
            h.extra -= 1;
            h.extra
        }
        End::Right => at(h, h.len as i64),
    };
    store.elem_put(key, &sub(pos), value)?;
    h.len += 1;
    Ok(())
}

/// Take up to `n` elements off `end`.
fn pop(store: &mut impl KvStore, key: &[u8], h: &mut Header, end: End, n: u64) -> Result<Vec<Vec<u8>>, StoreError> {
    let n = n.min(h.len) as i64;
    let len = h.len as i64;
    let mut out = match end {
        End::Left => slice(store, key, h, 0, n - 1)?,
        End::Right => slice(store, key, h, len - n, len - 1)?,
    };
    for i in 0..n {
        let pos = match end {
            End::Left => at(h, i),
            End::Right => at(h, len - 1 - i),
        };
        store.elem_delete(key, &sub(pos))?;
    }
    if end == End::Left {
        h.extra += n;
    } else {
        out.reverse();
    }
    h.len -= n as u64;
    Ok(out)
}

/// Replace elements `from..` with `tail` (renumbering them).
fn rewrite_from(
    store: &mut impl KvStore,
    key: &[u8],
    h: &mut Header,
    from: i64,
    tail: &[Vec<u8>],
) -> Result<(), StoreError> {
    for i in from..h.len as i64 {
        store.elem_delete(key, &sub(at(h, i)))?;
    }
    for (i, v) in tail.iter().enumerate() {
        store.elem_put(key, &sub(at(h, from + i as i64)), v)?;
    }
    h.len = from as u64 + tail.len() as u64;
    Ok(())
}

pub(super) fn all(store: &impl KvStore, key: &[u8], h: &Header) -> Result<Vec<Vec<u8>>, StoreError> {
    slice(store, key, h, 0, h.len as i64 - 1)
}

fn bulks(values: Vec<Vec<u8>>) -> Reply {
    Reply::Array(values.into_iter().map(Reply::Bulk).collect())
}

pub(super) fn apply(store: &mut impl KvStore, key: &[u8], op: &ListWrite, now_ms: u64) -> Result<Reply, StoreError> {
    match op {
        ListWrite::Move { dest, from, to } => return move_element(store, key, dest, *from, *to, now_ms),
        ListWrite::MPop { others, end, count } => {
            return pop_first(store, key, others, *end, *count, now_ms, |k, popped| vec![k, bulks(popped)]);
        }
        ListWrite::FirstPop { others, end } => {
            return pop_first(store, key, others, *end, 1, now_ms, |k, mut popped| {
                vec![k, Reply::Bulk(popped.pop().unwrap_or_default())]
            });
        }
        _ => {}
    }
    let mut h = typed!(open_for_write(store, key, now_ms, Kind::List)?);
    let exists = h.len > 0;
    let reply = match op {
        ListWrite::Push { existing: true, .. } if !exists => return Ok(Reply::Int(0)),
        ListWrite::Push { end, values, .. } => {
            for v in values {
                push(store, key, &mut h, *end, v)?;
            }
            Reply::Int(h.len as i64)
        }
        ListWrite::Pop { count, .. } if !exists => {
            return Ok(if count.is_some() { Reply::NilArray } else { Reply::Nil });
        }
        ListWrite::Pop { count: Some(0), .. } => return Ok(Reply::Array(Vec::new())),
        ListWrite::Pop { end, count } => {
            let popped = pop(store, key, &mut h, *end, count.unwrap_or(1))?;
            match count {
                None => Reply::bulk_or_nil(popped.into_iter().next()),
                Some(_) => bulks(popped),
            }
        }
        ListWrite::Set { .. } if !exists => return Ok(Reply::err("no such key")),
        ListWrite::Set { index, value } => {
            let len = h.len as i64;
            let i = if *index < 0 { len + index } else { *index };
            if !(0..len).contains(&i) {
                return Ok(Reply::err("index out of range"));
            }
            store.elem_put(key, &sub(at(&h, i)), value)?;
            Reply::Ok
        }
        ListWrite::Trim { .. } if !exists => return Ok(Reply::Ok),
        ListWrite::Trim { start, stop } => {
            let len = h.len as i64;
            let (keep_from, keep_to) = clamp(*start, *stop, len).unwrap_or((len, len - 1));
            for i in (0..keep_from.min(len)).chain((keep_to + 1).max(keep_from.min(len))..len) {
                store.elem_delete(key, &sub(at(&h, i)))?;
            }
            h.extra += keep_from.min(len);
            h.len = (keep_to - keep_from + 1).max(0) as u64;
            Reply::Ok
        }
        ListWrite::Rem { .. } | ListWrite::Insert { .. } if !exists => return Ok(Reply::Int(0)),
        ListWrite::Rem { count, value } => {
            let items = all(store, key, &h)?;
            let mut doomed = vec![false; items.len()];
            let mut left = if *count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
            let order: Box<dyn Iterator<Item = usize>> =
                if *count < 0 { Box::new((0..items.len()).rev()) } else { Box::new(0..items.len()) };
            for i in order {
                if left == 0 {
                    break;
                }
                if items[i] == *value {
                    doomed[i] = true;
                    left -= 1;
                }
            }
            let removed = doomed.iter().filter(|d| **d).count();
            let Some(first) = doomed.iter().position(|d| *d) else { return Ok(Reply::Int(0)) };
            let tail: Vec<Vec<u8>> =
                items.into_iter().zip(doomed).skip(first).filter(|(_, d)| !d).map(|(v, _)| v).collect();
            rewrite_from(store, key, &mut h, first as i64, &tail)?;
            Reply::Int(removed as i64)
        }
        ListWrite::Insert { after, pivot, value } => {
            let items = all(store, key, &h)?;
            let Some(i) = items.iter().position(|v| v == pivot) else { return Ok(Reply::Int(-1)) };
            let at_index = i + usize::from(*after);
            let mut tail = items[at_index..].to_vec();
            tail.insert(0, value.clone());
            rewrite_from(store, key, &mut h, at_index as i64, &tail)?;
            Reply::Int(h.len as i64)
        }
        ListWrite::Move { .. } | ListWrite::MPop { .. } | ListWrite::FirstPop { .. } => {
            unreachable!("answered above")
        }
    };
    h.save(store, key)?;
    Ok(reply)
}

/// Up to `count` elements from the first of `key` and `others` that holds
/// a list, answered as `[key, ...]` (`shape` makes the rest from the key's
/// name and the elements); nil when every one is empty.
fn pop_first(
    store: &mut impl KvStore,
    key: &[u8],
    others: &[Vec<u8>],
    end: End,
    count: u64,
    now_ms: u64,
    shape: impl FnOnce(Reply, Vec<Vec<u8>>) -> Vec<Reply>,
) -> Result<Reply, StoreError> {
    for k in std::iter::once(key).chain(others.iter().map(Vec::as_slice)) {
        let Some(mut h) = typed!(open(&*store, k, now_ms, Kind::List)?) else { continue };
        let popped = pop(store, k, &mut h, end, count)?;
        h.save(store, k)?;
        return Ok(Reply::Array(shape(Reply::Bulk(k.to_vec()), popped)));
    }
    Ok(Reply::NilArray)
}

fn move_element(
    store: &mut impl KvStore,
    src: &[u8],
    dest: &[u8],
    from: End,
    to: End,
    now_ms: u64,
) -> Result<Reply, StoreError> {
    let Some(mut s) = typed!(open(&*store, src, now_ms, Kind::List)?) else { return Ok(Reply::Nil) };
    if live(&*store, dest, now_ms)?.is_some_and(|r| r.kind != Kind::List) {
        return Ok(wrong_type());
    }
    let value = pop(store, src, &mut s, from, 1)?.pop().unwrap_or_default();
    if src == dest {
        // A rotation: the list never empties, so its TTL stays.
        push(store, src, &mut s, to, &value)?;
        s.save(store, src)?;
        return Ok(Reply::Bulk(value));
    }
    s.save(store, src)?;
    let mut d = typed!(open_for_write(store, dest, now_ms, Kind::List)?);
    push(store, dest, &mut d, to, &value)?;
    d.save(store, dest)?;
    Ok(Reply::Bulk(value))
}

pub(super) fn read(store: &impl KvStore, key: &[u8], op: &ListRead, now_ms: u64) -> Result<Reply, StoreError> {
    let Some(h) = typed!(open(store, key, now_ms, Kind::List)?) else {
        return Ok(match op {
            ListRead::Len => Reply::Int(0),
            ListRead::Index { .. } => Reply::Nil,
            ListRead::Range { .. } => Reply::Array(Vec::new()),
            ListRead::Pos { count: None, .. } => Reply::Nil,
            ListRead::Pos { .. } => Reply::Array(Vec::new()),
        });
    };
    let len = h.len as i64;
    Ok(match op {
        ListRead::Len => Reply::Int(len),
        ListRead::Index { index } => {
            let i = if *index < 0 { len + index } else { *index };
            if !(0..len).contains(&i) {
                return Ok(Reply::Nil);
            }
            Reply::bulk_or_nil(store.elem_get(key, &sub(at(&h, i)))?)
        }
        ListRead::Range { start, stop } => match clamp(*start, *stop, len) {
            Some((from, to)) => bulks(slice(store, key, &h, from, to)?),
            None => Reply::Array(Vec::new()),
        },
        ListRead::Pos { value, rank, count, maxlen } => {
            let items = all(store, key, &h)?;
            let limit = if *maxlen == 0 { items.len() } else { (*maxlen as usize).min(items.len()) };
            let order: Box<dyn Iterator<Item = usize>> =
                if *rank < 0 { Box::new((items.len() - limit..items.len()).rev()) } else { Box::new(0..limit) };
            let want = match count {
                None => 1,
                Some(0) => usize::MAX,
                Some(n) => *n as usize,
            };
            let mut skip = rank.unsigned_abs() - 1;
            let mut found = Vec::new();
            for i in order {
                if items[i] != *value {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                found.push(i as i64);
                if found.len() >= want {
                    break;
                }
            }
            match count {
                None => found.first().map_or(Reply::Nil, |i| Reply::Int(*i)),
                Some(_) => Reply::Array(found.into_iter().map(Reply::Int).collect()),
            }
        }
    })
}

type Args = Vec<Vec<u8>>;
type Parsed = Result<Command, Reply>;

fn write(mut a: Args, op: impl FnOnce(&mut Args) -> Result<ListWrite, Reply>) -> Parsed {
    let op = op(&mut a)?;
    Ok(Command::Write(WriteOp::List { key: std::mem::take(&mut a[1]), op }))
}

fn read_op(mut a: Args, op: impl FnOnce(&mut Args) -> Result<ListRead, Reply>) -> Parsed {
    let op = op(&mut a)?;
    Ok(Command::Read(ReadOp::List { key: std::mem::take(&mut a[1]), op }))
}

fn pushes(end: End, existing: bool) -> impl FnOnce(Args) -> Parsed {
    move |a| write(a, |a| Ok(ListWrite::Push { end, values: a.drain(2..).collect(), existing }))
}

pub(super) fn lpush(a: Args) -> Parsed {
    pushes(End::Left, false)(a)
}

pub(super) fn rpush(a: Args) -> Parsed {
    pushes(End::Right, false)(a)
}

pub(super) fn lpushx(a: Args) -> Parsed {
    pushes(End::Left, true)(a)
}

pub(super) fn rpushx(a: Args) -> Parsed {
    pushes(End::Right, true)(a)
}

fn pops(end: End) -> impl FnOnce(Args) -> Parsed {
    move |a| {
        write(a, |a| {
            let count = match a.len() {
                2 => None,
                3 => Some(positive(&a[2])?),
                _ => return Err(Reply::wrong_arity(if end == End::Left { "lpop" } else { "rpop" })),
            };
            Ok(ListWrite::Pop { end, count })
        })
    }
}

pub(super) fn lpop(a: Args) -> Parsed {
    pops(End::Left)(a)
}

pub(super) fn rpop(a: Args) -> Parsed {
    pops(End::Right)(a)
}

pub(super) fn llen(a: Args) -> Parsed {
    read_op(a, |_| Ok(ListRead::Len))
}

pub(super) fn lindex(a: Args) -> Parsed {
    read_op(a, |a| Ok(ListRead::Index { index: int(&a[2])? }))
}

pub(super) fn lrange(a: Args) -> Parsed {
    read_op(a, |a| Ok(ListRead::Range { start: int(&a[2])?, stop: int(&a[3])? }))
}

pub(super) fn lset(a: Args) -> Parsed {
    write(a, |a| {
        let index = int(&a[2])?;
        Ok(ListWrite::Set { index, value: std::mem::take(&mut a[3]) })
    })
}

pub(super) fn ltrim(a: Args) -> Parsed {
    write(a, |a| Ok(ListWrite::Trim { start: int(&a[2])?, stop: int(&a[3])? }))
}

pub(super) fn lrem(a: Args) -> Parsed {
    write(a, |a| {
        let count = int(&a[2])?;
        Ok(ListWrite::Rem { count, value: std::mem::take(&mut a[3]) })
    })
}

pub(super) fn linsert(a: Args) -> Parsed {
    write(a, |a| {
        let after = if a[2].eq_ignore_ascii_case(b"AFTER") {
            true
        } else if a[2].eq_ignore_ascii_case(b"BEFORE") {
            false
        } else {
            return Err(Reply::syntax());
        };
        Ok(ListWrite::Insert { after, pivot: std::mem::take(&mut a[3]), value: std::mem::take(&mut a[4]) })
    })
}

pub(super) fn end_of(arg: &[u8]) -> Result<End, Reply> {
    if arg.eq_ignore_ascii_case(b"LEFT") {
        Ok(End::Left)
    } else if arg.eq_ignore_ascii_case(b"RIGHT") {
        Ok(End::Right)
    } else {
        Err(Reply::syntax())
    }
}

pub(super) fn lmove(a: Args) -> Parsed {
    write(a, |a| {
        let (from, to) = (end_of(&a[3])?, end_of(&a[4])?);
        Ok(ListWrite::Move { dest: std::mem::take(&mut a[2]), from, to })
    })
}

pub(super) fn rpoplpush(a: Args) -> Parsed {
    write(a, |a| Ok(ListWrite::Move { dest: std::mem::take(&mut a[2]), from: End::Right, to: End::Left }))
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`.
pub(super) fn lmpop(a: Args) -> Parsed {
    Ok(Command::Write(lmpop_op(a, 1)?))
}

/// LMPOP's op from its arguments starting at `at` (numkeys), as LMPOP and
/// BLMPOP (whose timeout comes first) take them.
pub(super) fn lmpop_op(a: Args, at: usize) -> Result<WriteOp, Reply> {
    let p = mpop_args(a, at, end_of)?;
    Ok(WriteOp::List { key: p.key, op: ListWrite::MPop { others: p.others, end: p.side, count: p.count } })
}

/// What LMPOP and ZMPOP name: their keys, the side to pop from, and how
/// many.
pub(super) struct MPopArgs<T> {
    pub key: Vec<u8>,
    pub others: Vec<Vec<u8>>,
    pub side: T,
    pub count: u64,
}

/// The arguments of LMPOP and ZMPOP from `at`: `numkeys key [key ...]
/// <where> [COUNT count]`, with Redis's errors.
pub(super) fn mpop_args<T>(
    mut a: Args,
    at: usize,
    side: impl Fn(&[u8]) -> Result<T, Reply>,
) -> Result<MPopArgs<T>, Reply> {
    let n = parse_i64(&a[at]).ok_or_else(|| Reply::err("numkeys should be greater than 0"))?;
    if n < 1 {
        return Err(Reply::err("numkeys should be greater than 0"));
    }
    let n = n as usize;
    if n > a.len() - at - 2 {
        return Err(Reply::syntax());
    }
    let side = side(&a[at + 1 + n])?;
    let mut count = None;
    let mut i = at + 2 + n;
    while i < a.len() {
        if a[i].eq_ignore_ascii_case(b"COUNT") && i + 1 < a.len() && count.is_none() {
            let c = parse_i64(&a[i + 1]).filter(|c| *c > 0);
            count = Some(c.ok_or_else(|| Reply::err("count should be greater than 0"))? as u64);
            i += 2;
        } else {
            return Err(Reply::syntax());
        }
    }
    let mut keys: Vec<Vec<u8>> = a.drain(at + 1..at + 1 + n).collect();
    let key = keys.remove(0);
    Ok(MPopArgs { key, others: keys, side, count: count.unwrap_or(1) })
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`.
pub(super) fn lpos(a: Args) -> Parsed {
    read_op(a, |a| {
        let (mut rank, mut count, mut maxlen) = (1i64, None, 0u64);
        let mut i = 3;
        while i < a.len() {
            let has_value = i + 1 < a.len();
            if a[i].eq_ignore_ascii_case(b"RANK") && has_value {
                rank = int(&a[i + 1])?;
                if rank == 0 {
                    return Err(Reply::err(
                        "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use \
                         negative to start from the end of the list",
                    ));
                }
                if rank == i64::MIN {
                    return Err(Reply::err("value is out of range"));
                }
            } else if a[i].eq_ignore_ascii_case(b"COUNT") && has_value {
                let n = int(&a[i + 1])?;
                count = Some(u64::try_from(n).map_err(|_| Reply::err("COUNT can't be negative"))?);
            } else if a[i].eq_ignore_ascii_case(b"MAXLEN") && has_value {
                let n = int(&a[i + 1])?;
                maxlen = u64::try_from(n).map_err(|_| Reply::err("MAXLEN can't be negative"))?;
            } else {
                return Err(Reply::syntax());
            }
            i += 2;
        }
        Ok(ListRead::Pos { value: std::mem::take(&mut a[2]), rank, count, maxlen })
    })
}

#[cfg(test)]
#[path = "list_tests.rs"]
mod tests;
