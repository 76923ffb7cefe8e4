//! Hashes: HSET and the rest of the `H` commands.
//!
//! A hash is a collection header (its field count) and one element row per
//! field, stored under [`member_sub`] of the field with the value as its
//! bytes. Field order (HGETALL, HKEYS, HSCAN) is the rows' digest order.

use serde::{Deserialize, Serialize};

use super::collection::{member_of, member_sub, open, open_for_write, pick, scan_members, Header, Past, BATCH};
use super::command::{int, take, Command};
use super::glob::glob_match;
use super::integer::{parse_cursor, parse_i64};
use super::long_double::{increment_error, LongDouble};
use super::op::{ReadOp, WriteOp};
use super::record::Kind;
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
                if get(store, &sub, &h)?.is_none() {
                    added += 1;
                    h.len += 1;
                }
                store.elem_put(key, &sub, value)?;
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
            store.elem_put(key, &sub, value)?;
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
                Some(v) => match parse_i64(v) {
                    Some(n) => n,
                    None => return Ok(Reply::err("hash value is not an integer")),
                },
            };
            let Some(next) = current.checked_add(*delta) else {
                return Ok(Reply::err("increment or decrement would overflow"));
            };
            store.elem_put(key, &sub, next.to_string().as_bytes())?;
            h.len += u64::from(old.is_none());
            Reply::Int(next)
        }
        HashWrite::IncrByFloat { field, delta } => {
            let sub = member_sub(field);
            let old = get(store, &sub, &h)?;
            let text = match LongDouble::increment(old.as_deref(), delta) {
                Ok(text) => text,
                Err(e) => return Ok(increment_error(e, Reply::err("hash value is not a float"))),
            };
            store.elem_put(key, &sub, &text)?;
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
    let get = |field: &[u8]| store.elem_get(key, &member_sub(field));
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
            let rows = super::collection::elements(store, key)?;
            match op {
                HashRead::GetAll => Reply::Map(
                    rows.into_iter().map(|(sub, v)| (Reply::Bulk(member_of(&sub).to_vec()), Reply::Bulk(v))).collect(),
                ),
                HashRead::Keys => {
                    Reply::Array(rows.into_iter().map(|(sub, _)| Reply::Bulk(member_of(&sub).to_vec())).collect())
                }
                _ => Reply::Array(rows.into_iter().map(|(_, v)| Reply::Bulk(v)).collect()),
            }
        }
        HashRead::RandField { count: None, seed, .. } => {
            let row = pick(store, key, h.len, 1, true, *seed)?.pop();
            Reply::bulk_or_nil(row.map(|(sub, _)| member_of(&sub).to_vec()))
        }
        HashRead::RandField { count: Some(count), values, seed } => {
            let rows = pick(store, key, h.len, count.unsigned_abs(), *count > 0, *seed)?;
            let field = |sub: &[u8]| Reply::Bulk(member_of(sub).to_vec());
            if *values {
                Reply::Pairs(rows.into_iter().map(|(sub, v)| (field(&sub), Reply::Bulk(v))).collect())
            } else {
                Reply::Array(rows.into_iter().map(|(sub, _)| field(&sub)).collect())
            }
        }
        HashRead::Scan { cursor, count, pattern } => {
            let (next, rows) = scan_members(store, key, *cursor, *count)?;
            let mut out = Vec::with_capacity(rows.len() * 2);
            for (sub, v) in rows {
                let field = member_of(&sub);
                if pattern.as_ref().is_none_or(|p| glob_match(p, field)) {
                    out.push(Reply::Bulk(field.to_vec()));
                    out.push(Reply::Bulk(v));
                }
            }
            scan_reply(next, out)
        }
    })
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
