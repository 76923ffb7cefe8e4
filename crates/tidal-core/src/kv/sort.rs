//! SORT and SORT_RO: the elements of a list, set or sorted set, ordered as
//! numbers or as text, by their own values or by the values of keys named
//! after them (BY), answered or stored as a list (STORE), as themselves or
//! as other keys' values (GET).
//!
//! A pattern names one key per element: its first `*` is replaced by the
//! element, and a `->field` after the `*` reads that field of a hash
//! instead of a string. On a cluster every key SORT reads must be in the
//! sorted key's slot, so a BY or GET pattern that reads keys must fix
//! their slot with a hash tag before its `*` (`{user}:weight_*`), as Redis
//! Cluster asks; the tag is one of the command's keys, so a tag of another
//! slot is `CROSSSLOT`.

use serde::{Deserialize, Serialize};

use super::collection::{delete_key, elements, live, member_of, member_sub, Header};
use super::command::{int, is, take, Command};
use super::list::{self, End};
use super::op::{ReadOp, WriteOp};
use super::record::Kind;
use super::reply::Reply;
use super::store::{KvStore, StoreError};
use super::zset;
use crate::slot::hash_part;

/// SORT's options, already checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortSpec {
    /// BY's pattern, when it has a `*`: the weights are other keys' values.
    pub by: Option<Vec<u8>>,
    /// BY named no `*`: the elements keep their own order.
    pub nosort: bool,
    /// GET patterns, in order (`#` is the element itself).
    pub get: Vec<Vec<u8>>,
    /// LIMIT offset count.
    pub limit: Option<(i64, i64)>,
    pub desc: bool,
    pub alpha: bool,
}

impl SortSpec {
    /// The keys that fix the slots of the keys the patterns read: each
    /// pattern's text before its `*`, whose hash tag decides their slot.
    pub fn pattern_keys(&self) -> Vec<&[u8]> {
        let by = self.by.iter().filter(|_| !self.nosort);
        by.chain(&self.get).filter(|p| reads_keys(p)).map(|p| prefix(p)).collect()
    }
}

/// Whether a pattern reads keys (it has a `*`; `#` is the element).
fn reads_keys(pattern: &[u8]) -> bool {
    pattern != b"#" && pattern.contains(&b'*')
}

/// A pattern's text before its first `*`.
fn prefix(pattern: &[u8]) -> &[u8] {
    &pattern[..pattern.iter().position(|&b| b == b'*').unwrap_or(pattern.len())]
}

/// Whether every key a pattern reads is in one slot: its text before the
/// `*` holds a complete, non-empty hash tag.
fn pinned(pattern: &[u8]) -> bool {
    let p = prefix(pattern);
    hash_part(p).len() < p.len()
}

fn denied(option: &str) -> Reply {
    Reply::err(format!(
        "{option} option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots."
    ))
}

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
/// [ALPHA] [STORE destination], and SORT_RO (without STORE).
fn parse(mut a: Vec<Vec<u8>>, readonly: bool) -> Result<Command, Reply> {
    let mut spec = SortSpec::default();
    let mut dest = None;
    let mut j = 2;
    while j < a.len() {
        let left = a.len() - j - 1;
        if is(&a[j], "ASC") {
            spec.desc = false;
        } else if is(&a[j], "DESC") {
            spec.desc = true;
        } else if is(&a[j], "ALPHA") {
            spec.alpha = true;
        } else if is(&a[j], "LIMIT") && left >= 2 {
            spec.limit = Some((int(&a[j + 1])?, int(&a[j + 2])?));
            j += 2;
        } else if !readonly && is(&a[j], "STORE") && left >= 1 {
            dest = Some(take(&mut a, j + 1));
            j += 1;
        } else if is(&a[j], "BY") && left >= 1 {
            let pattern = take(&mut a, j + 1);
            if pattern.contains(&b'*') {
                if !pinned(&pattern) {
                    return Err(denied("BY"));
                }
                spec.by = Some(pattern);
            } else {
                spec.nosort = true;
            }
            j += 1;
        } else if is(&a[j], "GET") && left >= 1 {
            let pattern = take(&mut a, j + 1);
            if reads_keys(&pattern) && !pinned(&pattern) {
                return Err(denied("GET"));
            }
            spec.get.push(pattern);
            j += 1;
        } else {
            return Err(Reply::syntax());
        }
        j += 1;
    }
    let key = take(&mut a, 1);
    Ok(match dest {
        Some(dest) => Command::Write(WriteOp::Sort { key, dest, spec }),
        None => Command::Read(ReadOp::Sort { key, spec }),
    })
}

pub(super) fn sort(a: Vec<Vec<u8>>) -> Result<Command, Reply> {
    parse(a, false)
}

pub(super) fn sort_ro(a: Vec<Vec<u8>>) -> Result<Command, Reply> {
    parse(a, true)
}

/// The value of the key `pattern` names for `element` (a hash field with
/// `->field`); `None` when it names none, or nothing of the right type.
fn lookup(store: &impl KvStore, pattern: &[u8], element: &[u8], now_ms: u64) -> Result<Option<Vec<u8>>, StoreError> {
    if pattern == b"#" {
        return Ok(Some(element.to_vec()));
    }
    let Some(star) = pattern.iter().position(|&b| b == b'*') else { return Ok(None) };
    let after = &pattern[star + 1..];
    // `->` after the `*`, with a field name after it, reads a hash field.
    let arrow = after.windows(2).position(|w| w == b"->").filter(|&i| i + 2 < after.len());
    let (postfix, field) = match arrow {
        Some(i) => (&after[..i], Some(&after[i + 2..])),
        None => (after, None),
    };
    let key = [&pattern[..star], element, postfix].concat();
    let Some(rec) = live(store, &key, now_ms)? else { return Ok(None) };
    match field {
        Some(field) if rec.kind == Kind::Hash => {
            Ok(store.elem_get(&key, &member_sub(field))?.map(|row| super::hash::value_of(&rec, row)))
        }
        None if rec.is_string() => Ok(Some(rec.value)),
        _ => Ok(None),
    }
}

/// What is sorted: the source's kind and its elements.
type Source = (Kind, Vec<Vec<u8>>);

/// The elements of `key` in its own order (a set: the stored order), with
/// its kind; `Err` is WRONGTYPE. A missing key is an empty list.
fn source(store: &impl KvStore, key: &[u8], now_ms: u64) -> Result<Result<Source, Reply>, StoreError> {
    let Some(rec) = live(store, key, now_ms)? else { return Ok(Ok((Kind::List, Vec::new()))) };
    let kind = rec.kind;
    let values = match kind {
        Kind::List => list::all(store, key, &Header::from_record(rec))?,
        Kind::Set => elements(store, key)?.into_iter().map(|(sub, _)| member_of(&sub).to_vec()).collect(),
        Kind::ZSet => zset::members_in_order(store, key, rec)?,
        _ => return Ok(Err(super::collection::wrong_type())),
    };
    Ok(Ok((kind, values)))
}

/// SORT's weight of a value: `strtod` over the text up to its first NUL, so leading
/// white space is allowed and the empty text weighs 0.
fn weight(text: &[u8]) -> Option<f64> {
    // Redis reads the weight as a C string: it ends at the first NUL.
    let text = &text[..text.iter().position(|&b| b == 0).unwrap_or(text.len())];
    if text.is_empty() {
        return Some(0.0);
    }
    let from = text.iter().position(|b| !b" \t\n\x0b\x0c\r".contains(b))?;
    zset::parse_score(&text[from..])
}

/// The first and last positions LIMIT selects of `len` elements, as Redis
/// clamps them (`last < first` selects none).
fn window(limit: Option<(i64, i64)>, len: i64) -> (i64, i64) {
    let (offset, count) = limit.unwrap_or((0, -1));
    let mut start = offset.clamp(0, len);
    let count = count.clamp(-1, len);
    let mut end = if count < 0 { len - 1 } else { start.saturating_add(count) - 1 };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    (start, end.min(len - 1))
}

/// The elements SORT answers with, in order and within LIMIT; `Err` is
/// the reply instead (WRONGTYPE, or a weight that is not a number).
fn sorted(
    store: &impl KvStore,
    key: &[u8],
    spec: &SortSpec,
    storing: bool,
    now_ms: u64,
) -> Result<Result<Vec<Vec<u8>>, Reply>, StoreError> {
    let (kind, mut values) = match source(store, key, now_ms)? {
        Ok(source) => source,
        Err(reply) => return Ok(Err(reply)),
    };
    let (mut nosort, mut alpha, mut by) = (spec.nosort, spec.alpha, spec.by.as_deref());
    // A set keeps no order of its own: stored, it is sorted as text, so
    // the list stored is the same on every replica and after any move.
    if nosort && kind == Kind::Set && storing {
        (nosort, alpha, by) = (false, true, None);
    }
    let (start, end) = window(spec.limit, values.len() as i64);
    let directed = |order: std::cmp::Ordering| if spec.desc { order.reverse() } else { order };
    if nosort {
        if spec.desc && kind != Kind::Set {
            values.reverse();
        }
    } else if alpha {
        // By the text of the elements, or of their BY keys (a missing
        // one first); equal texts keep the elements' own order.
        let mut keyed = Vec::with_capacity(values.len());
        for v in values {
            let text = match by {
                Some(p) => lookup(store, p, &v, now_ms)?,
                None => None,
            };
            keyed.push((text, v));
        }
        keyed.sort_by(|a, b| directed(if by.is_some() { a.0.cmp(&b.0) } else { a.1.cmp(&b.1) }));
        values = keyed.into_iter().map(|(_, v)| v).collect();
    } else {
        // By number (a missing BY key weighs 0), then by the element's
        // text, so the order is the same everywhere.
        let mut keyed = Vec::with_capacity(values.len());
        for v in values {
            let text = match by {
                Some(p) => lookup(store, p, &v, now_ms)?,
                None => Some(v.clone()),
            };
            let Some(w) = text.as_deref().map_or(Some(0.0), weight) else {
                return Ok(Err(Reply::err("One or more scores can't be converted into double")));
            };
            keyed.push((w, v));
        }
        keyed.sort_by(|a, b| directed(a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1))));
        values = keyed.into_iter().map(|(_, v)| v).collect();
    }
    if end < start {
        return Ok(Ok(Vec::new()));
    }
    values.truncate(end as usize + 1);
    Ok(Ok(values.split_off(start as usize)))
}

/// What SORT answers for `values`: the elements themselves, or, with GET,
/// each pattern's value for each element in turn (`None`: nothing there).
fn answer(
    store: &impl KvStore,
    spec: &SortSpec,
    values: Vec<Vec<u8>>,
    now_ms: u64,
) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    if spec.get.is_empty() {
        return Ok(values.into_iter().map(Some).collect());
    }
    let mut out = Vec::with_capacity(values.len() * spec.get.len());
    for v in &values {
        for pattern in &spec.get {
            out.push(lookup(store, pattern, v, now_ms)?);
        }
    }
    Ok(out)
}

/// SORT or SORT_RO without STORE.
pub(super) fn read(store: &impl KvStore, key: &[u8], spec: &SortSpec, now_ms: u64) -> Result<Reply, StoreError> {
    let values = typed!(sorted(store, key, spec, false, now_ms)?);
    Ok(Reply::Array(answer(store, spec, values, now_ms)?.into_iter().map(Reply::bulk_or_nil).collect()))
}

/// SORT ... STORE `dest`: the answer as a list in `dest` (an empty answer
/// deletes it; a GET that finds nothing stores an empty string), and its
/// length.
pub(super) fn store(
    store: &mut impl KvStore,
    key: &[u8],
    dest: &[u8],
    spec: &SortSpec,
    now_ms: u64,
) -> Result<Reply, StoreError> {
    let values = typed!(sorted(store, key, spec, true, now_ms)?);
    let out = answer(store, spec, values, now_ms)?;
    delete_key(store, dest, now_ms)?;
    let mut h = Header::new(Kind::List);
    for v in &out {
        list::push(store, dest, &mut h, End::Right, v.as_deref().unwrap_or_default())?;
    }
    h.save(store, dest)?;
    Ok(Reply::Int(out.len() as i64))
}

#[cfg(test)]
#[path = "sort_tests.rs"]
mod tests;
