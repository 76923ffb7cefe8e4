//! Hashes: HSET and the rest of the `H` commands.
//!
//! A hash is a collection header (its field count, its past and the next
//! field number) and one element row per field, stored under
//! [`member_sub`] of the field: the field's number (LEB128), then its
//! value. A field is numbered when it is added, and keeps its number while
//! it is set again or incremented, so HGETALL, HKEYS, HVALS and DUMP give
//! fields in the order they were added, as Redis does for a small hash
//! (its listpack's order); HSCAN and the rows are in digest order. A hash
//! stored before fields were numbered has no third header word and bare
//! values (see [`Header::order`]), and keeps digest order.

use serde::{Deserialize, Serialize};

use super::collection::{
    for_each_element, member_of, member_sub, open, open_for_write, pick, scan_members, Header, Past, BATCH,
};
use super::command::{int, take, Command};
use super::glob::glob_match;
use super::integer::{parse_cursor, parse_i64};
use super::long_double::{increment_error, LongDouble};
use super::op::{ReadOp, WriteOp};
use super::record::{Kind, Record};
use super::reply::Reply;
use super::store::{ElementRows, KvStore, StoreError};

/// A change to one hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HashWrite {
    /// HSET (replies how many fields are new) and HMSET (`ok`: replies OK);
    /// later duplicates win.
    Set {
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
        ok: bool,
    },
    SetNx {
        field: Vec<u8>,
        value: Vec<u8>,
    },
    Del {
        fields: Vec<Vec<u8>>,
    },
    IncrBy {
        field: Vec<u8>,
        delta: i64,
    },
    /// The increment as the client wrote it (already checked to be a
    /// float): Redis adds in `long double`.
    IncrByFloat {
        field: Vec<u8>,
        delta: Vec<u8>,
    },
}

/// A query of one hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HashRead {
    Get {
        field: Vec<u8>,
    },
    MGet {
        fields: Vec<Vec<u8>>,
    },
    Len,
    Exists {
        field: Vec<u8>,
    },
    GetAll,
    Keys,
    Vals,
    StrLen {
        field: Vec<u8>,
    },
    /// HRANDFIELD: one field (`count: None`), or `count` of them (distinct
    /// when positive, repeating when negative), with values if asked.
    RandField {
        count: Option<i64>,
        values: bool,
        seed: u64,
    },
    Scan {
        cursor: u64,
        count: usize,
        pattern: Option<Vec<u8>>,
    },
}

pub(super) fn apply(store: &mut impl KvStore, key: &[u8], op: &HashWrite, now_ms: u64) -> Result<Reply, StoreError> {
    let mut h = typed!(open_for_write(store, key, now_ms, Kind::Hash)?);
    // A new hash has no fields to look up.
    let get = |store: &mut _, sub: &[u8], h: &Header| -> Result<Option<Vec<u8>>, StoreError> {
        if h.len == 0 {
            Ok(None)
        } else {
            KvStore::elem_get(store, key, sub)
        }
    };
    let reply = match op {
        HashWrite::Set { pairs, ok } => {
            let mut added = 0;
            for (field, value) in pairs {
                let sub = member_sub(field);
                let old = get(store, &sub, &h)?;
                if old.is_none() {
                    added += 1;
                    h.len += 1;
                }
                let row = numbered(&mut h, old.as_deref(), value);
                store.elem_put(key, &sub, &row)?;
            }
            if *ok {
                Reply::Ok
            } else {
                Reply::Int(added)
            }
        }
        HashWrite::SetNx { field, value } => {
            let sub = member_sub(field);
            if get(store, &sub, &h)?.is_some() {
                return Ok(Reply::Int(0));
            }
            let row = numbered(&mut h, None, value);
            store.elem_put(key, &sub, &row)?;
            h.len += 1;
            Reply::Int(1)
        }
        HashWrite::Del { fields } => {
            let mut removed = 0;
            for field in fields {
                let sub = member_sub(field);
                if store.elem_get(key, &sub)?.is_some() {
                    store.elem_delete(key, &sub)?;
                    removed += 1;
                    h.len -= 1;
                }
            }
            if removed == 0 {
                return Ok(Reply::Int(0));
            }
            Reply::Int(removed)
        }
        HashWrite::IncrBy { field, delta } => {
            let sub = member_sub(field);
            let old = get(store, &sub, &h)?;
            let current = match &old {
                None => 0,
                Some(row) => match parse_i64(split(h.order.is_some(), row).1) {
                    Some(n) => n,
                    None => return Ok(Reply::err("hash value is not an integer")),
                },
            };
            let Some(next) = current.checked_add(*delta) else {
                return Ok(Reply::err("increment or decrement would overflow"));
            };
            let row = numbered(&mut h, old.as_deref(), next.to_string().as_bytes());
            store.elem_put(key, &sub, &row)?;
            h.len += u64::from(old.is_none());
            Reply::Int(next)
        }
        HashWrite::IncrByFloat { field, delta } => {
            let sub = member_sub(field);
            let old = get(store, &sub, &h)?;
            let current = old.as_deref().map(|row| split(h.order.is_some(), row).1);
            let text = match LongDouble::increment(current, delta) {
                Ok(text) => text,
                Err(e) => return Ok(increment_error(e, Reply::err("hash value is not a float"))),
            };
            let row = numbered(&mut h, old.as_deref(), &text);
            store.elem_put(key, &sub, &row)?;
            h.len += u64::from(old.is_none());
            Reply::Bulk(text)
        }
    };
    // What Redis judges a hash's encoding by: its fields and values
    // written (HDEL only shrinks it).
    let longest = match op {
        HashWrite::Set { pairs, .. } => pairs.iter().map(|(f, v)| f.len().max(v.len())).max(),
        HashWrite::SetNx { field, value } => Some(field.len().max(value.len())),
        HashWrite::IncrBy { field, .. } | HashWrite::IncrByFloat { field, .. } => Some(field.len()),
        HashWrite::Del { .. } => None,
    };
    if let Some(longest) = longest.filter(|_| h.len > 0) {
        Past::note(&mut h, longest);
    }
    h.save(store, key)?;
    Ok(reply)
}

pub(super) fn read(store: &impl KvStore, key: &[u8], op: &HashRead, now_ms: u64) -> Result<Reply, StoreError> {
    let h = typed!(open(store, key, now_ms, Kind::Hash)?);
    let Some(h) = h else {
        return Ok(match op {
            HashRead::Get { .. } => Reply::Nil,
            HashRead::MGet { fields } => Reply::Array(vec![Reply::Nil; fields.len()]),
            HashRead::Len | HashRead::Exists { .. } | HashRead::StrLen { .. } => Reply::Int(0),
            HashRead::GetAll => Reply::Map(Vec::new()),
            HashRead::Keys | HashRead::Vals => Reply::Array(Vec::new()),
            HashRead::RandField { count: None, .. } => Reply::Nil,
            HashRead::RandField { .. } => Reply::Array(Vec::new()),
            HashRead::Scan { .. } => scan_reply(0, Vec::new()),
        });
    };
    let ordered = h.order.is_some();
    let get = |field: &[u8]| -> Result<Option<Vec<u8>>, StoreError> {
        Ok(store.elem_get(key, &member_sub(field))?.map(|row| split(ordered, &row).1.to_vec()))
    };
    Ok(match op {
        HashRead::Get { field } => Reply::bulk_or_nil(get(field)?),
        HashRead::MGet { fields } => {
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                out.push(Reply::bulk_or_nil(get(f)?));
            }
            Reply::Array(out)
        }
        HashRead::Len => Reply::Int(h.len as i64),
        HashRead::Exists { field } => Reply::Int(i64::from(get(field)?.is_some())),
        HashRead::StrLen { field } => Reply::Int(get(field)?.map_or(0, |v| v.len() as i64)),
        HashRead::GetAll | HashRead::Keys | HashRead::Vals => {
            let pairs = fields(store, key, &h)?;
            match op {
                HashRead::GetAll => {
                    Reply::Map(pairs.into_iter().map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v))).collect())
                }
                HashRead::Keys => Reply::Array(pairs.into_iter().map(|(f, _)| Reply::Bulk(f)).collect()),
                _ => Reply::Array(pairs.into_iter().map(|(_, v)| Reply::Bulk(v)).collect()),
            }
        }
        HashRead::RandField { count: None, seed, .. } => {
            let row = pick(store, key, h.len, 1, true, *seed)?.pop();
            Reply::bulk_or_nil(row.map(|(sub, _)| member_of(&sub).to_vec()))
        }
        HashRead::RandField { count: Some(count), values, seed } => {
            // Every field, asked for distinct: the whole hash in its
            // order, as Redis answers it.
            let pairs = if *count > 0 && count.unsigned_abs() >= h.len {
                fields(store, key, &h)?
            } else {
                let rows = pick(store, key, h.len, count.unsigned_abs(), *count > 0, *seed)?;
                rows.iter().map(|(sub, row)| (member_of(sub).to_vec(), split(ordered, row).1.to_vec())).collect()
            };
            if *values {
                Reply::Pairs(pairs.into_iter().map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v))).collect())
            } else {
                Reply::Array(pairs.into_iter().map(|(f, _)| Reply::Bulk(f)).collect())
            }
        }
        HashRead::Scan { cursor, count, pattern } => {
            let (next, rows) = scan_members(store, key, *cursor, *count)?;
            let mut out = Vec::with_capacity(rows.len() * 2);
            for (sub, row) in rows {
                let field = member_of(&sub);
                if pattern.as_ref().is_none_or(|p| glob_match(p, field)) {
                    out.push(Reply::Bulk(field.to_vec()));
                    out.push(Reply::Bulk(split(ordered, &row).1.to_vec()));
                }
            }
            scan_reply(next, out)
        }
    })
}

/// A field's row: its number, then `value`, in a hash that numbers its
/// fields; the number of the field's `old` row is kept, and a new field
/// takes the header's next one. `value` alone in a hash that does not.
fn numbered(h: &mut Header, old: Option<&[u8]>, value: &[u8]) -> Vec<u8> {
    let Some(next) = h.order.as_mut() else { return value.to_vec() };
    let n = match old {
        Some(old) => split(true, old).0,
        None => {
            *next += 1;
            *next - 1
        }
    };
    let mut row = Vec::with_capacity(10 + value.len());
    let mut rest = n;
    while rest >= 0x80 {
        row.push(rest as u8 | 0x80);
        rest >>= 7;
    }
    row.push(rest as u8);
    row.extend_from_slice(value);
    row
}

/// A field row's number (0 where fields are not numbered) and value.
fn split(ordered: bool, row: &[u8]) -> (u64, &[u8]) {
    if !ordered {
        return (0, row);
    }
    let mut n = 0u64;
    for (i, b) in row.iter().enumerate().take(10) {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (n, &row[i + 1..]);
        }
    }
    // Not a row this module wrote: read it as a bare value.
    (0, row)
}

/// Field/value pairs.
pub(super) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Every field of the hash under `key` (header `h`) with its value: in the
/// order they were added where fields are numbered, else in digest order.
pub(super) fn fields(store: &impl KvStore, key: &[u8], h: &Header) -> Result<Fields, StoreError> {
    let ordered = h.order.is_some();
    let mut rows = Vec::with_capacity(h.len as usize);
    for_each_element(store, key, |sub, row| {
        let (n, value) = split(ordered, row);
        rows.push((n, member_of(sub).to_vec(), value.to_vec()));
    })?;
    if ordered {
        rows.sort_unstable_by_key(|(n, _, _)| *n);
    }
    Ok(rows.into_iter().map(|(_, f, v)| (f, v)).collect())
}

/// The value a hash field's stored row holds (the hash's header is `rec`).
pub(super) fn value_of(rec: &Record, row: Vec<u8>) -> Vec<u8> {
    match super::collection::order_of(rec) {
        Some(_) => split(true, &row).1.to_vec(),
        None => row,
    }
}

/// How long the value in a row of the hash with header `rec` is.
pub(super) fn value_len(rec: &Record) -> impl Fn(&[u8]) -> usize {
    let ordered = super::collection::order_of(rec).is_some();
    move |row| split(ordered, row).1.len()
}

/// `[cursor, items]`, the reply of every SCAN form.
pub(super) fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk(cursor.to_string()), Reply::Array(items)])
}

/// The options of HSCAN/SSCAN/ZSCAN after the cursor: `COUNT n` (at
/// least 1) and `MATCH pattern`.
pub(super) fn scan_args(args: &mut [Vec<u8>]) -> Result<(u64, usize, Option<Vec<u8>>), Reply> {
    let cursor = parse_cursor(&args[2]).ok_or_else(|| Reply::err("invalid cursor"))?;
    let (mut count, mut pattern) = (10usize, None);
    let mut i = 3;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if args[i].eq_ignore_ascii_case(b"COUNT") && has_value {
            let n = int(&args[i + 1])?;
            if n < 1 {
                return Err(Reply::syntax());
            }
            count = (n as usize).min(BATCH * 64);
        } else if args[i].eq_ignore_ascii_case(b"MATCH") && has_value {
            let p = std::mem::take(&mut args[i + 1]);
            pattern = (p.as_slice() != b"*").then_some(p);
        } else {
            return Err(Reply::syntax());
        }
        i += 2;
    }
    Ok((cursor, count, pattern))
}

type Args = Vec<Vec<u8>>;
type Parsed = Result<Command, Reply>;

fn write(mut a: Args, op: impl FnOnce(&mut Args) -> Result<HashWrite, Reply>) -> Parsed {
    let op = op(&mut a)?;
    Ok(Command::Write(WriteOp::Hash { key: std::mem::take(&mut a[1]), op }))
}

fn read_op(mut a: Args, op: impl FnOnce(&mut Args) -> Result<HashRead, Reply>) -> Parsed {
    let op = op(&mut a)?;
    Ok(Command::Read(ReadOp::Hash { key: std::mem::take(&mut a[1]), op }))
}

fn field_pairs(name: &str, a: &mut Args) -> Result<ElementRows, Reply> {
    if !a.len().is_multiple_of(2) {
        return Err(Reply::wrong_arity(name));
    }
    Ok(a[2..].chunks_mut(2).map(|p| (std::mem::take(&mut p[0]), std::mem::take(&mut p[1]))).collect())
}

pub(super) fn hset(a: Args) -> Parsed {
    write(a, |a| Ok(HashWrite::Set { pairs: field_pairs("hset", a)?, ok: false }))
}

pub(super) fn hmset(a: Args) -> Parsed {
    write(a, |a| Ok(HashWrite::Set { pairs: field_pairs("hmset", a)?, ok: true }))
}

pub(super) fn hsetnx(a: Args) -> Parsed {
    write(a, |a| Ok(HashWrite::SetNx { field: take(a, 2), value: take(a, 3) }))
}

pub(super) fn hdel(a: Args) -> Parsed {
    write(a, |a| Ok(HashWrite::Del { fields: a.drain(2..).collect() }))
}

pub(super) fn hincrby(a: Args) -> Parsed {
    write(a, |a| {
        let delta = int(&a[3])?;
        Ok(HashWrite::IncrBy { field: take(a, 2), delta })
    })
}

pub(super) fn hincrbyfloat(a: Args) -> Parsed {
    write(a, |a| {
        match LongDouble::parse(&a[3]) {
            None => return Err(Reply::not_float()),
            Some(LongDouble::Inf { .. }) => return Err(Reply::err("value is NaN or Infinity")),
            Some(_) => {}
        }
        Ok(HashWrite::IncrByFloat { field: take(a, 2), delta: take(a, 3) })
    })
}

pub(super) fn hget(a: Args) -> Parsed {
    read_op(a, |a| Ok(HashRead::Get { field: take(a, 2) }))
}

pub(super) fn hmget(a: Args) -> Parsed {
    read_op(a, |a| Ok(HashRead::MGet { fields: a.drain(2..).collect() }))
}

pub(super) fn hlen(a: Args) -> Parsed {
    read_op(a, |_| Ok(HashRead::Len))
}

pub(super) fn hexists(a: Args) -> Parsed {
    read_op(a, |a| Ok(HashRead::Exists { field: take(a, 2) }))
}

pub(super) fn hgetall(a: Args) -> Parsed {
    read_op(a, |_| Ok(HashRead::GetAll))
}

pub(super) fn hkeys(a: Args) -> Parsed {
    read_op(a, |_| Ok(HashRead::Keys))
}

pub(super) fn hvals(a: Args) -> Parsed {
    read_op(a, |_| Ok(HashRead::Vals))
}

pub(super) fn hstrlen(a: Args) -> Parsed {
    read_op(a, |a| Ok(HashRead::StrLen { field: take(a, 2) }))
}

/// Redis' bound on a negative random count (it would otherwise allocate
/// without limit).
pub(super) fn rand_count(arg: &[u8], with_values: bool) -> Result<i64, Reply> {
    let n = int(arg)?;
    let floor = if with_values { -(i64::MAX / 2) } else { -i64::MAX };
    if n < floor {
        return Err(Reply::err("value is out of range"));
    }
    Ok(n)
}

pub(super) fn hrandfield(a: Args) -> Parsed {
    read_op(a, |a| {
        let (count, values) = match a.len() {
            2 => (None, false),
            3 => (Some(rand_count(&a[2], false)?), false),
            4 if a[3].eq_ignore_ascii_case(b"WITHVALUES") => (Some(rand_count(&a[2], true)?), true),
            _ => return Err(Reply::syntax()),
        };
        Ok(HashRead::RandField { count, values, seed: 0 })
    })
}

pub(super) fn hscan(a: Args) -> Parsed {
    read_op(a, |a| {
        let (cursor, count, pattern) = scan_args(a)?;
        Ok(HashRead::Scan { cursor, count, pattern })
    })
}

#[cfg(test)]
#[path = "hash_tests.rs"]
mod tests;
