//! Sorted sets: ZADD and the rest of the `Z` commands (not the blocking
//! forms).
//!
//! A sorted set is a collection header (its size) and two element rows
//! per member: under `0x00 ‖ member_sub(member)` its score (by member,
//! for ZSCORE and ZSCAN), and under `0x01 ‖ score ‖ member` nothing (by
//! score, then member: Redis's order), where the score is an `f64` in an
//! order-keeping 8-byte form. Ranges by score or rank walk the second
//! index; a rank is counted, so ZRANK and a deep ZRANGE are O(rank).
//!
//! A small set goes without the second index ([`Header::unindexed`]):
//! while it holds at most [`UNINDEXED_MAX`] members, a walk by score reads
//! every member and orders them in memory, and a change writes one row
//! instead of two (three when a score moves). The change that takes it
//! past that size writes the index, and it keeps it from then on.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::collection::{
    elements, live, member_of, member_sub, open, open_for_write, pick, scan_members, Header, Past,
};
use super::command::{int, is, positive, Command};
use super::glob::glob_match;
use super::hash::{rand_count, scan_args, scan_reply};
use super::integer::parse_i64;
use super::op::{ReadOp, WriteOp};
use super::record::{Kind, Record};
use super::reply::Reply;
use super::store::{bound_slice, prefixed_bounds, within, ElementRows, KvStore, StoreError};

const BY_MEMBER: u8 = 0x00;
const BY_SCORE: u8 = 0x01;

/// The most members a sorted set holds without its by-score index: as
/// many as Redis keeps in a listpack by default, which it also walks
/// whole.
const UNINDEXED_MAX: u64 = 128;

/// One end of a score range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreBound {
    pub score: f64,
    pub open: bool,
}

/// One end of a lexicographic range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

/// What a range selects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ZRange {
    Rank { start: i64, stop: i64 },
    Score { min: ScoreBound, max: ScoreBound },
    Lex { min: LexBound, max: LexBound },
}

/// ZADD's flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZAddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

/// How ZUNIONSTORE and ZINTERSTORE combine scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregate {
    Sum,
    Min,
    Max,
}

/// ZUNIONSTORE, ZINTERSTORE or ZDIFFSTORE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZSetAlgebra {
    Union,
    Inter,
    Diff,
}

impl ZSetAlgebra {
    /// The keyspace event of its STORE form.
    pub(super) fn store_event(self) -> &'static str {
        match self {
            ZSetAlgebra::Union => "zunionstore",
            ZSetAlgebra::Inter => "zinterstore",
            ZSetAlgebra::Diff => "zdiffstore",
        }
    }
}

impl ZRange {
    /// The keyspace event of a removal by this range.
    pub(super) fn removal_event(&self) -> &'static str {
        match self {
            ZRange::Rank { .. } => "zremrangebyrank",
            ZRange::Score { .. } => "zremrangebyscore",
            ZRange::Lex { .. } => "zremrangebylex",
        }
    }
}

/// A change to one sorted set (`key`), or to a destination from sets of
/// its slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ZSetWrite {
    Add {
        flags: ZAddFlags,
        pairs: Vec<(f64, Vec<u8>)>,
    },
    IncrBy {
        delta: f64,
        member: Vec<u8>,
    },
    Rem {
        members: Vec<Vec<u8>>,
    },
    RemRange {
        range: ZRange,
    },
    /// ZPOPMIN (`max: false`) / ZPOPMAX: `count: None` pops one.
    Pop {
        max: bool,
        count: Option<u64>,
    },
    /// `bad_options`: the error for WEIGHTS or AGGREGATE, which Redis
    /// reports only once every source has the right type.
    Store {
        op: ZSetAlgebra,
        sources: Vec<Vec<u8>>,
        weights: Vec<f64>,
        aggregate: Aggregate,
        bad_options: Option<String>,
    },
    /// From the first of `key` and `others` that is not empty: ZMPOP
    /// (`count`, answered `[key, [[member, score], ...]]`), or BZPOPMIN
    /// and BZPOPMAX's pop of one (`count: None`, answered `[key, member,
    /// score]`).
    MPop {
        others: Vec<Vec<u8>>,
        max: bool,
        count: Option<u64>,
    },
    /// ZRANGESTORE: ZRANGE's members of `src`, with their scores, into
    /// `key` (replacing it; deleting it when there are none).
    RangeStore {
        src: Vec<u8>,
        range: ZRange,
        rev: bool,
        limit: Option<(i64, i64)>,
    },
}

/// A query of one sorted set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ZSetRead {
    Score {
        member: Vec<u8>,
    },
    MScore {
        members: Vec<Vec<u8>>,
    },
    Card,
    Count {
        range: ZRange,
    },
    /// ZRANGE and its older forms: `rev` walks from the top, `limit` is
    /// (offset, count) with a negative count for all.
    Range {
        range: ZRange,
        rev: bool,
        limit: Option<(i64, i64)>,
        scores: bool,
    },
    Rank {
        member: Vec<u8>,
        rev: bool,
    },
    RandMember {
        count: Option<i64>,
        scores: bool,
        seed: u64,
    },
    Scan {
        cursor: u64,
        count: usize,
        pattern: Option<Vec<u8>>,
    },
    /// ZUNION, ZINTER or ZDIFF of `key` and `others`; `bad_options` as
    /// for [`ZSetWrite::Store`].
    Algebra {
        op: ZSetAlgebra,
        others: Vec<Vec<u8>>,
        weights: Vec<f64>,
        aggregate: Aggregate,
        bad_options: Option<String>,
        scores: bool,
    },
    /// ZINTERCARD: the size of the intersection of `key` and `others`,
    /// counting no further than `limit` (0: all).
    InterCard {
        others: Vec<Vec<u8>>,
        limit: u64,
        bad_options: Option<String>,
    },
}

/// `f64` bits in an order that sorts like the numbers (-0 as 0).
fn sortable(score: f64) -> [u8; 8] {
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = score.to_bits();
    let key = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
    key.to_be_bytes()
}

fn unsortable(b: &[u8]) -> f64 {
    let key = u64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
    f64::from_bits(if key >> 63 == 1 { key & !(1 << 63) } else { !key })
}

fn by_member(member: &[u8]) -> Vec<u8> {
    [&[BY_MEMBER][..], &member_sub(member)].concat()
}

fn by_score(score: f64, member: &[u8]) -> Vec<u8> {
    [&[BY_SCORE][..], &sortable(score), member].concat()
}

/// A score as Redis 7.0 writes it: `%.17g`.
pub fn format_score(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // An integer of at most 17 digits is its digits (the common case:
    // counts and timestamps), without the exact formatting below.
    if v.fract() == 0.0 && v.abs() < 1e17 {
        return (v as i64).to_string();
    }
    let e = format!("{v:.16e}");
    let (mantissa, exp) = e.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::from(if neg { "-" } else { "" });
    if (-4..17).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(digits.trim_end_matches('0'));
        } else {
            let (int, frac) = digits.split_at(exp as usize + 1);
            out.push_str(int);
            let frac = frac.trim_end_matches('0');
            if !frac.is_empty() {
                out.push('.');
                out.push_str(frac);
            }
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        let rest = rest.trim_end_matches('0');
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push_str(&format!("e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs()));
    }
    out
}

/// A score as Redis reads one (`strtod` over the whole text, no NaN, no
/// overflow or underflow to zero).
pub fn parse_score(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?;
    if s.is_empty() || s.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    let lower = s.to_ascii_lowercase();
    let named_inf = lower.trim_start_matches(['+', '-']).starts_with("inf");
    if v.is_nan() || (v.is_infinite() && !named_inf) {
        return None;
    }
    let mantissa = lower.split('e').next().unwrap_or_default();
    if v == 0.0 && mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        return None;
    }
    Some(v)
}

/// The score a by-member row holds.
fn stored_score(row: &[u8]) -> f64 {
    f64::from_be_bytes(row[..8].try_into().expect("8 bytes"))
}

fn score_of(store: &impl KvStore, key: &[u8], member: &[u8]) -> Result<Option<f64>, StoreError> {
    Ok(store.elem_get(key, &by_member(member))?.map(|v| stored_score(&v)))
}

fn put_score(
    store: &mut impl KvStore,
    key: &[u8],
    h: &Header,
    member: &[u8],
    old: Option<f64>,
    new: f64,
) -> Result<(), StoreError> {
    store.elem_put(key, &by_member(member), &new.to_be_bytes())?;
    if h.unindexed {
        return Ok(());
    }
    if let Some(old) = old {
        store.elem_delete(key, &by_score(old, member))?;
    }
    store.elem_put(key, &by_score(new, member), b"")
}

fn remove_member(
    store: &mut impl KvStore,
    key: &[u8],
    h: &Header,
    member: &[u8],
    score: f64,
) -> Result<(), StoreError> {
    store.elem_delete(key, &by_member(member))?;
    if h.unindexed {
        return Ok(());
    }
    store.elem_delete(key, &by_score(score, member))
}

/// Write the by-score index of an unindexed set that has grown past
/// [`UNINDEXED_MAX`] (its header is saved by the caller).
fn index_if_large(store: &mut impl KvStore, key: &[u8], h: &mut Header) -> Result<(), StoreError> {
    if !h.unindexed || h.len <= UNINDEXED_MAX {
        return Ok(());
    }
    for (sub, _) in score_rows(&*store, key)? {
        store.elem_put(key, &sub, b"")?;
    }
    h.unindexed = false;
    Ok(())
}

/// The by-score rows an unindexed set would have, in their order, made
/// from its by-member rows.
fn score_rows(store: &impl KvStore, key: &[u8]) -> Result<ElementRows, StoreError> {
    let (lower, upper) = prefixed_bounds(&[BY_MEMBER], Bound::Unbounded, Bound::Unbounded);
    let rows = store.elem_range(key, bound_slice(&lower), bound_slice(&upper), usize::MAX)?;
    let mut subs: ElementRows =
        rows.into_iter().map(|(sub, v)| (by_score(stored_score(&v), member_of(&sub[1..])), v)).collect();
    subs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(subs)
}

/// Members in score order within `lower..upper` of the score index, at
/// most `limit`. An unindexed set's index is made in memory.
fn walk(
    store: &impl KvStore,
    key: &[u8],
    h: &Header,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, f64)>, StoreError> {
    let rows = if h.unindexed {
        let (lo, hi) = (bound_slice(&lower), bound_slice(&upper));
        let rows = score_rows(store, key)?.into_iter().filter(|(sub, _)| within(sub, lo, hi));
        rows.take(limit).collect()
    } else {
        store.elem_range(key, bound_slice(&lower), bound_slice(&upper), limit)?
    };
    Ok(rows.into_iter().map(|(sub, _)| (sub[9..].to_vec(), unsortable(&sub[1..9]))).collect())
}

fn whole() -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    prefixed_bounds(&[BY_SCORE], Bound::Unbounded, Bound::Unbounded)
}

/// The score index bounds of a score range.
fn score_bounds(min: ScoreBound, max: ScoreBound) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let next = |s: f64| -> Bound<Vec<u8>> {
        // Past every member of score `s`: the next 8-byte key.
        match u64::from_be_bytes(sortable(s)).checked_add(1) {
            Some(n) => Bound::Excluded([&[BY_SCORE][..], &n.to_be_bytes()].concat()),
            None => Bound::Excluded(vec![BY_SCORE + 1]),
        }
    };
    let lower = if min.open {
        match next(min.score) {
            Bound::Excluded(k) => Bound::Included(k),
            other => other,
        }
    } else {
        Bound::Included([&[BY_SCORE][..], &sortable(min.score)].concat())
    };
    let upper =
        if max.open { Bound::Excluded([&[BY_SCORE][..], &sortable(max.score)].concat()) } else { next(max.score) };
    (lower, upper)
}

fn lex_ok(member: &[u8], min: &LexBound, max: &LexBound) -> bool {
    let above = match min {
        LexBound::Min => true,
        LexBound::Max => false,
        LexBound::Incl(m) => member >= m.as_slice(),
        LexBound::Excl(m) => member > m.as_slice(),
    };
    let below = match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Incl(m) => member <= m.as_slice(),
        LexBound::Excl(m) => member < m.as_slice(),
    };
    above && below
}

/// The members `range` selects, in score order.
fn select(store: &impl KvStore, key: &[u8], h: &Header, range: &ZRange) -> Result<Vec<(Vec<u8>, f64)>, StoreError> {
    let (lo, hi) = whole();
    match range {
        ZRange::Rank { start, stop } => {
            let len = h.len as i64;
            let start = if *start < 0 { (len + start).max(0) } else { *start };
            let stop = if *stop < 0 { len + stop } else { (*stop).min(len - 1) };
            if start > stop || start >= len {
                return Ok(Vec::new());
            }
            let mut all = walk(store, key, h, lo, hi, (stop + 1) as usize)?;
            Ok(all.split_off(start as usize))
        }
        ZRange::Score { min, max } => {
            if min.score > max.score || (min.score == max.score && (min.open || max.open)) {
                return Ok(Vec::new());
            }
            let (lo, hi) = score_bounds(*min, *max);
            walk(store, key, h, lo, hi, usize::MAX)
        }
        ZRange::Lex { min, max } => {
            Ok(walk(store, key, h, lo, hi, usize::MAX)?.into_iter().filter(|(m, _)| lex_ok(m, min, max)).collect())
        }
    }
}

/// Every member of the sorted set `key` (its record `rec`), in score order.
pub(super) fn members_in_order(store: &impl KvStore, key: &[u8], rec: Record) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(scored(store, key, rec)?.into_iter().map(|(m, _)| m).collect())
}

/// Every member of the sorted set `key` (its record `rec`) with its score, in score order.
pub(super) fn scored(store: &impl KvStore, key: &[u8], rec: Record) -> Result<Vec<(Vec<u8>, f64)>, StoreError> {
    let (lo, hi) = whole();
    walk(store, key, &Header::from_record(rec), lo, hi, usize::MAX)
}

/// Members, with their scores as pairs when asked (RESP3 nests them).
fn flat(items: Vec<(Vec<u8>, f64)>, scores: bool) -> Reply {
    if scores {
        Reply::Pairs(items.into_iter().map(|(m, s)| (Reply::Bulk(m), Reply::Score(s))).collect())
    } else {
        Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
    }
}

/// A source of ZUNIONSTORE and its kin: a sorted set, or a set (every
/// score 1); `Err` is WRONGTYPE.
fn source(store: &impl KvStore, key: &[u8], now_ms: u64) -> Result<Result<BTreeMap<Vec<u8>, f64>, Reply>, StoreError> {
    let Some(rec) = live(store, key, now_ms)? else { return Ok(Ok(BTreeMap::new())) };
    Ok(match rec.kind {
        Kind::ZSet => {
            let (lo, hi) = whole();
            Ok(walk(store, key, &Header::from_record(rec), lo, hi, usize::MAX)?.into_iter().collect())
        }
        Kind::Set => Ok(elements(store, key)?.into_iter().map(|(sub, _)| (member_of(&sub).to_vec(), 1.0)).collect()),
        _ => Err(super::collection::wrong_type()),
    })
}

fn combine(a: f64, b: f64, how: Aggregate) -> f64 {
    match how {
        Aggregate::Sum => {
            let s = a + b;
            // inf + -inf is NaN in IEEE; Redis makes it 0.
            if s.is_nan() {
                0.0
            } else {
                s
            }
        }
        Aggregate::Min => a.min(b),
        Aggregate::Max => a.max(b),
    }
}

fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// The members ZUNION, ZINTER or ZDIFF make of `sources` (sorted sets,
/// or sets with every score 1); `Err` is WRONGTYPE, or `bad_options`
/// once every source has the right type.
fn combine_sources(
    store: &impl KvStore,
    sources: &[&[u8]],
    op: ZSetAlgebra,
    weights: &[f64],
    aggregate: Aggregate,
    bad_options: &Option<String>,
    now_ms: u64,
) -> Result<Result<BTreeMap<Vec<u8>, f64>, Reply>, StoreError> {
    let mut sets = Vec::with_capacity(sources.len());
    for k in sources {
        match source(store, k, now_ms)? {
            Ok(s) => sets.push(s),
            Err(e) => return Ok(Err(e)),
        }
    }
    if let Some(e) = bad_options {
        return Ok(Err(Reply::Error(e.clone())));
    }
    for (i, s) in sets.iter_mut().enumerate() {
        let w = weights.get(i).copied().unwrap_or(1.0);
        s.values_mut().for_each(|v| *v = weighted(*v, w));
    }
    let mut sets = sets.into_iter();
    let mut acc = sets.next().unwrap_or_default();
    for s in sets {
        acc = match op {
            ZSetAlgebra::Union => {
                for (m, v) in s {
                    let e = acc.entry(m).or_insert(f64::NAN);
                    *e = if e.is_nan() { v } else { combine(*e, v, aggregate) };
                }
                acc
            }
            ZSetAlgebra::Inter => {
                acc.into_iter().filter_map(|(m, v)| s.get(&m).map(|w| (m, combine(v, *w, aggregate)))).collect()
            }
            ZSetAlgebra::Diff => acc.into_iter().filter(|(m, _)| !s.contains_key(m)).collect(),
        };
    }
    Ok(Ok(acc))
}

/// Replace `key` with a sorted set of `members` (none: delete it), and
/// answer its size.
fn store_members(
    store: &mut impl KvStore,
    key: &[u8],
    members: impl Iterator<Item = (Vec<u8>, f64)>,
) -> Result<Reply, StoreError> {
    if let Some(old) = store.get(key)? {
        super::collection::remove(store, key, &old)?;
    }
    let mut h = Header::new(Kind::ZSet);
    for (m, v) in members {
        put_score(store, key, &h, &m, None, v)?;
        h.len += 1;
    }
    index_if_large(store, key, &mut h)?;
    h.save(store, key)?;
    Ok(Reply::Int(h.len as i64))
}

/// ZRANGE's members of `key`, in its order.
fn range_items(
    store: &impl KvStore,
    key: &[u8],
    h: &Header,
    range: &ZRange,
    rev: bool,
    limit: Option<(i64, i64)>,
) -> Result<Vec<(Vec<u8>, f64)>, StoreError> {
    let mut items = match range {
        // Ranks counted from the top: the same members as the forward
        // ranks mirrored, in reverse order.
        ZRange::Rank { start, stop } if rev => {
            let len = h.len as i64;
            let norm = |i: i64| if i < 0 { len + i } else { i };
            let (s, e) = (norm(*start).max(0), norm(*stop).min(len - 1));
            if s > e || s >= len {
                Vec::new()
            } else {
                select(store, key, h, &ZRange::Rank { start: len - 1 - e, stop: len - 1 - s })?
            }
        }
        _ => select(store, key, h, range)?,
    };
    if rev {
        items.reverse();
    }
    if let Some((offset, count)) = limit {
        if offset < 0 {
            items.clear();
        } else {
            let rest = items.split_off((offset as usize).min(items.len()));
            items = if count < 0 { rest } else { rest.into_iter().take(count as usize).collect() };
        }
    }
    Ok(items)
}

/// Members in a sorted set's order: by score, then by member.
fn by_score_order(members: BTreeMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
    let mut items: Vec<(Vec<u8>, f64)> = members.into_iter().collect();
    items.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    items
}

/// The `n` lowest members of `key` (the highest, highest first, when
/// `max`), removed.
fn pop_members(
    store: &mut impl KvStore,
    key: &[u8],
    h: &mut Header,
    max: bool,
    n: u64,
) -> Result<Vec<(Vec<u8>, f64)>, StoreError> {
    let n = n.min(h.len) as i64;
    let len = h.len as i64;
    let range =
        if max { ZRange::Rank { start: len - n, stop: len - 1 } } else { ZRange::Rank { start: 0, stop: n - 1 } };
    let mut popped = select(&*store, key, h, &range)?;
    if max {
        popped.reverse();
    }
    for (m, s) in &popped {
        remove_member(store, key, h, m, *s)?;
    }
    h.len -= popped.len() as u64;
    Ok(popped)
}

pub(super) fn apply(store: &mut impl KvStore, key: &[u8], op: &ZSetWrite, now_ms: u64) -> Result<Reply, StoreError> {
    apply_counting(store, key, op, now_ms, true)
}

/// RESTORE's members: added as ZADD adds them, but RESTORE counts as one
/// change, not one per member.
pub(super) fn restore(
    store: &mut impl KvStore,
    key: &[u8],
    pairs: Vec<(f64, Vec<u8>)>,
    now_ms: u64,
) -> Result<(), StoreError> {
    let add = ZSetWrite::Add { flags: ZAddFlags::default(), pairs };
    apply_counting(store, key, &add, now_ms, false).map(drop)
}

fn apply_counting(
    store: &mut impl KvStore,
    key: &[u8],
    op: &ZSetWrite,
    now_ms: u64,
    counting: bool,
) -> Result<Reply, StoreError> {
    if let ZSetWrite::MPop { others, max, count } = op {
        for k in std::iter::once(key).chain(others.iter().map(Vec::as_slice)) {
            let Some(mut h) = typed!(open(&*store, k, now_ms, Kind::ZSet)?) else { continue };
            let popped = pop_members(store, k, &mut h, *max, count.unwrap_or(1))?;
            h.save(store, k)?;
            let name = Reply::Bulk(k.to_vec());
            return Ok(Reply::Array(match count {
                None => std::iter::once(name)
                    .chain(popped.into_iter().flat_map(|(m, s)| [Reply::Bulk(m), Reply::Score(s)]))
                    .collect(),
                Some(_) => {
                    let pairs = popped.into_iter().map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Score(s)]));
                    vec![name, Reply::Array(pairs.collect())]
                }
            }));
        }
        return Ok(Reply::NilArray);
    }
    if let ZSetWrite::Store { op, sources, weights, aggregate, bad_options } = op {
        let sources: Vec<&[u8]> = sources.iter().map(Vec::as_slice).collect();
        let acc = typed!(combine_sources(&*store, &sources, *op, weights, *aggregate, bad_options, now_ms)?);
        return store_members(store, key, acc.into_iter());
    }
    if let ZSetWrite::RangeStore { src, range, rev, limit } = op {
        let items = match typed!(open(&*store, src, now_ms, Kind::ZSet)?) {
            Some(h) => range_items(&*store, src, &h, range, *rev, *limit)?,
            None => Vec::new(),
        };
        return store_members(store, key, items.into_iter());
    }
    let mut h = typed!(open_for_write(store, key, now_ms, Kind::ZSet)?);
    let exists = h.len > 0;
    let reply = match op {
        ZSetWrite::Add { flags, pairs } => {
            let (mut added, mut changed) = (0, 0);
            let mut last = None;
            for (score, member) in pairs {
                let old = if h.len == 0 { None } else { score_of(&*store, key, member)? };
                let new = if flags.incr { old.unwrap_or(0.0) + score } else { *score };
                if new.is_nan() {
                    return Ok(Reply::err("resulting score is not a number (NaN)"));
                }
                let allowed = match old {
                    None => !flags.xx,
                    Some(o) => !flags.nx && (!flags.gt || new > o) && (!flags.lt || new < o),
                };
                if !allowed {
                    last = None;
                    continue;
                }
                last = Some(new);
                if old == Some(new) {
                    continue;
                }
                put_score(store, key, &h, member, old, new)?;
                if old.is_none() {
                    h.len += 1;
                    added += 1;
                } else {
                    changed += 1;
                }
            }
            // Redis counts each member added or given a new score.
            if counting {
                store.count_changes((added + changed) as u64);
            }
            let reply = if flags.incr {
                last.map_or(Reply::Nil, Reply::Score)
            } else if flags.ch {
                Reply::Int(added + changed)
            } else {
                Reply::Int(added)
            };
            if added + changed == 0 {
                // Nothing changed: the set is untouched, and a WATCH on it holds.
                return Ok(reply);
            }
            reply
        }
        ZSetWrite::IncrBy { delta, member } => {
            let old = if exists { score_of(&*store, key, member)? } else { None };
            let new = old.unwrap_or(0.0) + delta;
            if new.is_nan() {
                return Ok(Reply::err("resulting score is not a number (NaN)"));
            }
            put_score(store, key, &h, member, old, new)?;
            h.len += u64::from(old.is_none());
            Reply::Score(new)
        }
        ZSetWrite::Rem { members } => {
            let mut removed = 0;
            for m in members {
                if let Some(s) = score_of(&*store, key, m)? {
                    remove_member(store, key, &h, m, s)?;
                    h.len -= 1;
                    removed += 1;
                }
            }
            if removed == 0 {
                return Ok(Reply::Int(0));
            }
            Reply::Int(removed)
        }
        ZSetWrite::RemRange { range } => {
            let doomed = select(&*store, key, &h, range)?;
            if doomed.is_empty() {
                return Ok(Reply::Int(0));
            }
            for (m, s) in &doomed {
                remove_member(store, key, &h, m, *s)?;
            }
            h.len -= doomed.len() as u64;
            Reply::Int(doomed.len() as i64)
        }
        ZSetWrite::Pop { count: Some(0), .. } => return Ok(Reply::Array(Vec::new())),
        ZSetWrite::Pop { .. } if !exists => return Ok(Reply::Array(Vec::new())),
        ZSetWrite::Pop { max, count } => {
            let popped = pop_members(store, key, &mut h, *max, count.unwrap_or(1))?;
            match count {
                // One member without a count: a flat [member, score].
                None => Reply::Array(popped.into_iter().flat_map(|(m, s)| [Reply::Bulk(m), Reply::Score(s)]).collect()),
                Some(_) => flat(popped, true),
            }
        }
        ZSetWrite::Store { .. } | ZSetWrite::MPop { .. } | ZSetWrite::RangeStore { .. } => {
            unreachable!("answered above")
        }
    };
    // What Redis judges a sorted set's encoding by: the members written.
    let longest = match op {
        ZSetWrite::Add { pairs, .. } => pairs.iter().map(|(_, m)| m.len()).max(),
        ZSetWrite::IncrBy { member, .. } => Some(member.len()),
        _ => None,
    };
    if let Some(longest) = longest.filter(|_| h.len > 0) {
        Past::note(&mut h, longest);
    }
    index_if_large(store, key, &mut h)?;
    h.save(store, key)?;
    Ok(reply)
}

pub(super) fn read(store: &impl KvStore, key: &[u8], op: &ZSetRead, now_ms: u64) -> Result<Reply, StoreError> {
    match op {
        ZSetRead::Algebra { op, others, weights, aggregate, bad_options, scores } => {
            let sources: Vec<&[u8]> = std::iter::once(key).chain(others.iter().map(Vec::as_slice)).collect();
            let acc = typed!(combine_sources(store, &sources, *op, weights, *aggregate, bad_options, now_ms)?);
            return Ok(flat(by_score_order(acc), *scores));
        }
        ZSetRead::InterCard { others, limit, bad_options } => {
            let sources: Vec<&[u8]> = std::iter::once(key).chain(others.iter().map(Vec::as_slice)).collect();
            let inter = ZSetAlgebra::Inter;
            let acc = typed!(combine_sources(store, &sources, inter, &[], Aggregate::Sum, bad_options, now_ms)?);
            let n = acc.len() as u64;
            return Ok(Reply::Int(if *limit > 0 { n.min(*limit) } else { n } as i64));
        }
        _ => {}
    }
    let Some(h) = typed!(open(store, key, now_ms, Kind::ZSet)?) else {
        return Ok(match op {
            ZSetRead::Score { .. } | ZSetRead::Rank { .. } => Reply::Nil,
            ZSetRead::MScore { members } => Reply::Array(vec![Reply::Nil; members.len()]),
            ZSetRead::Card | ZSetRead::Count { .. } => Reply::Int(0),
            ZSetRead::Range { .. } => Reply::Array(Vec::new()),
            ZSetRead::RandMember { count: None, .. } => Reply::Nil,
            ZSetRead::RandMember { .. } => Reply::Array(Vec::new()),
            ZSetRead::Scan { .. } => scan_reply(0, Vec::new()),
            ZSetRead::Algebra { .. } | ZSetRead::InterCard { .. } => unreachable!("answered above"),
        });
    };
    Ok(match op {
        ZSetRead::Score { member } => score_of(store, key, member)?.map_or(Reply::Nil, Reply::Score),
        ZSetRead::MScore { members } => {
            let mut out = Vec::with_capacity(members.len());
            for m in members {
                out.push(score_of(store, key, m)?.map_or(Reply::Nil, Reply::Score));
            }
            Reply::Array(out)
        }
        ZSetRead::Card => Reply::Int(h.len as i64),
        ZSetRead::Count { range } => Reply::Int(select(store, key, &h, range)?.len() as i64),
        ZSetRead::Range { range, rev, limit, scores } => {
            flat(range_items(store, key, &h, range, *rev, *limit)?, *scores)
        }
        ZSetRead::Rank { member, rev } => match score_of(store, key, member)? {
            None => Reply::Nil,
            Some(s) => {
                let (lo, _) = whole();
                let before = walk(store, key, &h, lo, Bound::Excluded(by_score(s, member)), usize::MAX)?.len() as i64;
                Reply::Int(if *rev { h.len as i64 - 1 - before } else { before })
            }
        },
        ZSetRead::RandMember { count, scores, seed } => {
            let members = Members(store);
            let (n, distinct) = count.map_or((1, true), |c| (c.unsigned_abs(), c > 0));
            let rows = pick(&members, key, h.len, n, distinct, *seed)?;
            let items: Vec<(Vec<u8>, f64)> =
                rows.into_iter().map(|(sub, v)| (member_of(&sub).to_vec(), stored_score(&v))).collect();
            match count {
                None => Reply::bulk_or_nil(items.into_iter().next().map(|(m, _)| m)),
                Some(_) => flat(items, *scores),
            }
        }
        ZSetRead::Algebra { .. } | ZSetRead::InterCard { .. } => unreachable!("answered above"),
        ZSetRead::Scan { cursor, count, pattern } => {
            let (next, rows) = scan_members(&Members(store), key, *cursor, *count)?;
            let mut out = Vec::with_capacity(rows.len() * 2);
            for (sub, v) in rows {
                let m = member_of(&sub);
                if pattern.as_ref().is_none_or(|p| glob_match(p, m)) {
                    out.push(Reply::Bulk(m.to_vec()));
                    out.push(Reply::bulk(format_score(stored_score(&v))));
                }
            }
            scan_reply(next, out)
        }
    })
}

/// A sorted set's by-member index as a store of its own: what the shared
/// scan and sampling helpers walk.
struct Members<'a, S>(&'a S);

fn read_only() -> StoreError {
    StoreError("the by-member view of a sorted set is read-only".into())
}

impl<S: KvStore> KvStore for Members<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<super::record::Record>, StoreError> {
        self.0.get(key)
    }
    fn put(&mut self, _: &[u8], _: &super::record::Record) -> Result<(), StoreError> {
        Err(read_only())
    }
    fn delete(&mut self, _: &[u8]) -> Result<bool, StoreError> {
        Err(read_only())
    }
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, super::record::Record)>, StoreError> {
        self.0.scan(after, limit)
    }
    fn clear(&mut self) -> Result<u64, StoreError> {
        Err(read_only())
    }
    fn len(&self) -> Result<u64, StoreError> {
        self.0.len()
    }
    fn elem_get(&self, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.elem_get(key, &[&[BY_MEMBER][..], sub].concat())
    }
    fn elem_put(&mut self, _: &[u8], _: &[u8], _: &[u8]) -> Result<(), StoreError> {
        Err(read_only())
    }
    fn elem_delete(&mut self, _: &[u8], _: &[u8]) -> Result<(), StoreError> {
        Err(read_only())
    }
    fn elem_range(
        &self,
        key: &[u8],
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<ElementRows, StoreError> {
        let (lower, upper) = prefixed_bounds(&[BY_MEMBER], lower, upper);
        let rows = self.0.elem_range(key, bound_slice(&lower), bound_slice(&upper), limit)?;
        Ok(rows.into_iter().map(|(sub, v)| (sub[1..].to_vec(), v)).collect())
    }
}

type Args = Vec<Vec<u8>>;
type Parsed = Result<Command, Reply>;

fn write(key: Vec<u8>, op: ZSetWrite) -> Parsed {
    Ok(Command::Write(WriteOp::ZSet { key, op }))
}

fn read_op(key: Vec<u8>, op: ZSetRead) -> Parsed {
    Ok(Command::Read(ReadOp::ZSet { key, op }))
}

fn not_float() -> Reply {
    Reply::not_float()
}

fn score_arg(arg: &[u8]) -> Result<f64, Reply> {
    parse_score(arg).ok_or_else(not_float)
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`.
pub(super) fn zadd(mut a: Args) -> Parsed {
    let mut flags = ZAddFlags::default();
    let mut i = 2;
    while i < a.len() {
        let w = a[i].to_ascii_uppercase();
        match w.as_slice() {
            b"NX" => flags.nx = true,
            b"XX" => flags.xx = true,
            b"GT" => flags.gt = true,
            b"LT" => flags.lt = true,
            b"CH" => flags.ch = true,
            b"INCR" => flags.incr = true,
            _ => break,
        }
        i += 1;
    }
    let rest = a.len() - i;
    if rest == 0 || !rest.is_multiple_of(2) {
        return Err(Reply::syntax());
    }
    if flags.nx && flags.xx {
        return Err(Reply::err("XX and NX options at the same time are not compatible"));
    }
    if [flags.gt, flags.lt, flags.nx].iter().filter(|f| **f).count() > 1 {
        return Err(Reply::err("GT, LT, and/or NX options at the same time are not compatible"));
    }
    if flags.incr && rest > 2 {
        return Err(Reply::err("INCR option supports a single increment-element pair"));
    }
    let mut pairs = Vec::with_capacity(rest / 2);
    for j in (i..a.len()).step_by(2) {
        pairs.push((score_arg(&a[j])?, std::mem::take(&mut a[j + 1])));
    }
    write(std::mem::take(&mut a[1]), ZSetWrite::Add { flags, pairs })
}

pub(super) fn zincrby(mut a: Args) -> Parsed {
    let delta = score_arg(&a[2])?;
    let member = std::mem::take(&mut a[3]);
    write(std::mem::take(&mut a[1]), ZSetWrite::IncrBy { delta, member })
}

pub(super) fn zrem(mut a: Args) -> Parsed {
    let members = a.drain(2..).collect();
    write(std::mem::take(&mut a[1]), ZSetWrite::Rem { members })
}

pub(super) fn zscore(mut a: Args) -> Parsed {
    let member = std::mem::take(&mut a[2]);
    read_op(std::mem::take(&mut a[1]), ZSetRead::Score { member })
}

pub(super) fn zmscore(mut a: Args) -> Parsed {
    let members = a.drain(2..).collect();
    read_op(std::mem::take(&mut a[1]), ZSetRead::MScore { members })
}

pub(super) fn zcard(mut a: Args) -> Parsed {
    read_op(std::mem::take(&mut a[1]), ZSetRead::Card)
}

fn score_bound(arg: &[u8]) -> Result<ScoreBound, Reply> {
    let (open, text) = match arg.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, arg),
    };
    let score = parse_score(text).ok_or_else(|| Reply::err("min or max is not a float"))?;
    Ok(ScoreBound { score, open })
}

fn lex_bound(arg: &[u8]) -> Result<LexBound, Reply> {
    match arg {
        b"-" => Ok(LexBound::Min),
        b"+" => Ok(LexBound::Max),
        [b'[', rest @ ..] => Ok(LexBound::Incl(rest.to_vec())),
        [b'(', rest @ ..] => Ok(LexBound::Excl(rest.to_vec())),
        _ => Err(Reply::err("min or max not valid string range item")),
    }
}

pub(super) fn zcount(mut a: Args) -> Parsed {
    let range = ZRange::Score { min: score_bound(&a[2])?, max: score_bound(&a[3])? };
    read_op(std::mem::take(&mut a[1]), ZSetRead::Count { range })
}

pub(super) fn zlexcount(mut a: Args) -> Parsed {
    let range = ZRange::Lex { min: lex_bound(&a[2])?, max: lex_bound(&a[3])? };
    read_op(std::mem::take(&mut a[1]), ZSetRead::Count { range })
}

#[derive(Clone, Copy, PartialEq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// The shared parser of ZRANGE and its older forms: `by` and `rev` come
/// from the command name for those, and `options` says whether BYSCORE,
/// BYLEX and REV may be given.
fn range_cmd(mut a: Args, mut by: By, mut rev: bool, options: bool) -> Parsed {
    let (mut limit, mut scores) = (None, false);
    let mut i = 4;
    while i < a.len() {
        let w = a[i].to_ascii_uppercase();
        match w.as_slice() {
            b"WITHSCORES" => scores = true,
            b"LIMIT" if i + 2 < a.len() => {
                let offset = int(&a[i + 1])?;
                let count = int(&a[i + 2])?;
                limit = Some((offset, count));
                i += 2;
            }
            b"BYSCORE" if options && by == By::Rank => by = By::Score,
            b"BYLEX" if options && by == By::Rank => by = By::Lex,
            b"REV" if options => rev = true,
            _ => return Err(Reply::syntax()),
        }
        i += 1;
    }
    if by == By::Rank {
        // As in Redis, a LIMIT whose count is -1 (no limit) is let through
        // a rank range, and ignored.
        if limit.is_some_and(|(_, count)| count != -1) {
            return Err(Reply::err(
                "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        limit = None;
    }
    if scores && by == By::Lex {
        return Err(Reply::err("syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    // With REV (or a REV form) the first bound given is the upper one.
    let (lo, hi) = if rev && by != By::Rank { (&a[3], &a[2]) } else { (&a[2], &a[3]) };
    let range = match by {
        By::Rank => ZRange::Rank { start: int(lo)?, stop: int(hi)? },
        By::Score => ZRange::Score { min: score_bound(lo)?, max: score_bound(hi)? },
        By::Lex => ZRange::Lex { min: lex_bound(lo)?, max: lex_bound(hi)? },
    };
    read_op(std::mem::take(&mut a[1]), ZSetRead::Range { range, rev, limit, scores })
}

pub(super) fn zrange(a: Args) -> Parsed {
    range_cmd(a, By::Rank, false, true)
}

pub(super) fn zrevrange(a: Args) -> Parsed {
    range_cmd(a, By::Rank, true, false)
}

pub(super) fn zrangebyscore(a: Args) -> Parsed {
    range_cmd(a, By::Score, false, false)
}

pub(super) fn zrevrangebyscore(a: Args) -> Parsed {
    range_cmd(a, By::Score, true, false)
}

pub(super) fn zrangebylex(a: Args) -> Parsed {
    range_cmd(a, By::Lex, false, false)
}

pub(super) fn zrevrangebylex(a: Args) -> Parsed {
    range_cmd(a, By::Lex, true, false)
}

fn rank_cmd(mut a: Args, rev: bool) -> Parsed {
    let member = std::mem::take(&mut a[2]);
    read_op(std::mem::take(&mut a[1]), ZSetRead::Rank { member, rev })
}

pub(super) fn zrank(a: Args) -> Parsed {
    rank_cmd(a, false)
}

pub(super) fn zrevrank(a: Args) -> Parsed {
    rank_cmd(a, true)
}

fn rem_range(mut a: Args, by: By) -> Parsed {
    let range = match by {
        By::Rank => ZRange::Rank { start: int(&a[2])?, stop: int(&a[3])? },
        By::Score => ZRange::Score { min: score_bound(&a[2])?, max: score_bound(&a[3])? },
        By::Lex => ZRange::Lex { min: lex_bound(&a[2])?, max: lex_bound(&a[3])? },
    };
    write(std::mem::take(&mut a[1]), ZSetWrite::RemRange { range })
}

pub(super) fn zremrangebyrank(a: Args) -> Parsed {
    rem_range(a, By::Rank)
}

pub(super) fn zremrangebyscore(a: Args) -> Parsed {
    rem_range(a, By::Score)
}

pub(super) fn zremrangebylex(a: Args) -> Parsed {
    rem_range(a, By::Lex)
}

fn pop_cmd(mut a: Args, max: bool) -> Parsed {
    let count = match a.len() {
        2 => None,
        3 => Some(positive(&a[2])?),
        _ => return Err(Reply::syntax()),
    };
    write(std::mem::take(&mut a[1]), ZSetWrite::Pop { max, count })
}

pub(super) fn zpopmin(a: Args) -> Parsed {
    pop_cmd(a, false)
}

pub(super) fn zpopmax(a: Args) -> Parsed {
    pop_cmd(a, true)
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`.
pub(super) fn zmpop(a: Args) -> Parsed {
    Ok(Command::Write(zmpop_op(a, 1)?))
}

/// ZMPOP's op from its arguments starting at `at` (numkeys), as ZMPOP
/// and BZMPOP (whose timeout comes first) take them.
pub(super) fn zmpop_op(a: Args, at: usize) -> Result<WriteOp, Reply> {
    let p = super::list::mpop_args(a, at, min_or_max)?;
    Ok(WriteOp::ZSet { key: p.key, op: ZSetWrite::MPop { others: p.others, max: p.side, count: Some(p.count) } })
}

/// MIN or MAX: whether it is MAX.
fn min_or_max(arg: &[u8]) -> Result<bool, Reply> {
    if is(arg, "MIN") {
        Ok(false)
    } else if is(arg, "MAX") {
        Ok(true)
    } else {
        Err(Reply::syntax())
    }
}

pub(super) fn zrandmember(mut a: Args) -> Parsed {
    let (count, scores) = match a.len() {
        2 => (None, false),
        3 => (Some(rand_count(&a[2], false)?), false),
        4 if a[3].eq_ignore_ascii_case(b"WITHSCORES") => (Some(rand_count(&a[2], true)?), true),
        _ => return Err(Reply::syntax()),
    };
    read_op(std::mem::take(&mut a[1]), ZSetRead::RandMember { count, scores, seed: 0 })
}

pub(super) fn zscan(mut a: Args) -> Parsed {
    let (cursor, count, pattern) = scan_args(&mut a)?;
    read_op(std::mem::take(&mut a[1]), ZSetRead::Scan { cursor, count, pattern })
}

/// Which command's options [`algebra_args`] reads.
#[derive(PartialEq, Clone, Copy)]
enum Form {
    /// Z{UNION,INTER,DIFF}STORE.
    Store,
    /// ZUNION, ZINTER, ZDIFF: WITHSCORES too.
    Read,
    /// ZINTERCARD: LIMIT only.
    Card,
}

/// What the sorted-set algebra commands name from `at` (numkeys on):
/// `numkeys key [key ...]` and their options.
struct AlgebraArgs {
    sources: Vec<Vec<u8>>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    /// A bad option's error, which Redis gives only once every source has
    /// the right type.
    bad_options: Option<String>,
    scores: bool,
    limit: u64,
}

/// `numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]
/// [WITHSCORES] [LIMIT n]`, each option where `form` and `op` allow it.
fn algebra_args(mut a: Args, at: usize, name: &str, op: ZSetAlgebra, form: Form) -> Result<AlgebraArgs, Reply> {
    let n = int(&a[at])?;
    if n < 1 {
        return Err(Reply::err(format!("at least 1 input key is needed for '{name}' command")));
    }
    let n = n as usize;
    if n > a.len() - at - 1 {
        return Err(Reply::syntax());
    }
    let mut out = AlgebraArgs {
        sources: Vec::new(),
        weights: Vec::new(),
        aggregate: Aggregate::Sum,
        bad_options: None,
        scores: false,
        limit: 0,
    };
    let combines = op != ZSetAlgebra::Diff && form != Form::Card;
    let options = |out: &mut AlgebraArgs| -> Result<(), Reply> {
        let mut i = at + 1 + n;
        while i < a.len() {
            if is(&a[i], "WEIGHTS") && combines && i + n < a.len() {
                out.weights = (i + 1..=i + n)
                    .map(|j| parse_score(&a[j]).ok_or_else(|| Reply::err("weight value is not a float")))
                    .collect::<Result<_, _>>()?;
                i += n + 1;
            } else if is(&a[i], "AGGREGATE") && combines && i + 1 < a.len() {
                out.aggregate = match a[i + 1].to_ascii_uppercase().as_slice() {
                    b"SUM" => Aggregate::Sum,
                    b"MIN" => Aggregate::Min,
                    b"MAX" => Aggregate::Max,
                    _ => return Err(Reply::syntax()),
                };
                i += 2;
            } else if is(&a[i], "WITHSCORES") && form == Form::Read {
                out.scores = true;
                i += 1;
            } else if is(&a[i], "LIMIT") && form == Form::Card && i + 1 < a.len() {
                out.limit = parse_i64(&a[i + 1])
                    .and_then(|l| u64::try_from(l).ok())
                    .ok_or_else(|| Reply::err("LIMIT can't be negative"))?;
                i += 2;
            } else {
                return Err(Reply::syntax());
            }
        }
        Ok(())
    };
    out.bad_options = match options(&mut out) {
        Ok(()) => None,
        Err(Reply::Error(e)) => Some(e),
        Err(_) => Some("ERR syntax error".to_string()),
    };
    out.sources = a.drain(at + 1..at + 1 + n).collect();
    Ok(out)
}

/// `Z{UNION,INTER,DIFF}STORE dest numkeys key [key ...] [WEIGHTS w ...]
/// [AGGREGATE SUM|MIN|MAX]` (no WEIGHTS or AGGREGATE for DIFF).
fn store_cmd(mut a: Args, op: ZSetAlgebra) -> Parsed {
    let name = match op {
        ZSetAlgebra::Union => "zunionstore",
        ZSetAlgebra::Inter => "zinterstore",
        ZSetAlgebra::Diff => "zdiffstore",
    };
    let dest = std::mem::take(&mut a[1]);
    let x = algebra_args(a, 2, name, op, Form::Store)?;
    let (weights, aggregate, bad_options) = (x.weights, x.aggregate, x.bad_options);
    write(dest, ZSetWrite::Store { op, sources: x.sources, weights, aggregate, bad_options })
}

/// `Z{UNION,INTER,DIFF} numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE
/// SUM|MIN|MAX] [WITHSCORES]`.
fn algebra_cmd(a: Args, op: ZSetAlgebra) -> Parsed {
    let name = match op {
        ZSetAlgebra::Union => "zunion",
        ZSetAlgebra::Inter => "zinter",
        ZSetAlgebra::Diff => "zdiff",
    };
    let x = algebra_args(a, 1, name, op, Form::Read)?;
    let mut others = x.sources;
    let key = others.remove(0);
    let (weights, aggregate, bad_options, scores) = (x.weights, x.aggregate, x.bad_options, x.scores);
    read_op(key, ZSetRead::Algebra { op, others, weights, aggregate, bad_options, scores })
}

pub(super) fn zunion(a: Args) -> Parsed {
    algebra_cmd(a, ZSetAlgebra::Union)
}

pub(super) fn zinter(a: Args) -> Parsed {
    algebra_cmd(a, ZSetAlgebra::Inter)
}

pub(super) fn zdiff(a: Args) -> Parsed {
    algebra_cmd(a, ZSetAlgebra::Diff)
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`.
pub(super) fn zintercard(a: Args) -> Parsed {
    let x = algebra_args(a, 1, "zintercard", ZSetAlgebra::Inter, Form::Card)?;
    let mut others = x.sources;
    let key = others.remove(0);
    read_op(key, ZSetRead::InterCard { others, limit: x.limit, bad_options: x.bad_options })
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset
/// count]`: ZRANGE's arguments after the destination.
pub(super) fn zrangestore(mut a: Args) -> Parsed {
    let dest = a.remove(1);
    match range_cmd(a, By::Rank, false, true)? {
        Command::Read(ReadOp::ZSet { key, op: ZSetRead::Range { scores: false, range, rev, limit } }) => {
            write(dest, ZSetWrite::RangeStore { src: key, range, rev, limit })
        }
        _ => Err(Reply::syntax()),
    }
}

pub(super) fn zunionstore(a: Args) -> Parsed {
    store_cmd(a, ZSetAlgebra::Union)
}

pub(super) fn zinterstore(a: Args) -> Parsed {
    store_cmd(a, ZSetAlgebra::Inter)
}

pub(super) fn zdiffstore(a: Args) -> Parsed {
    store_cmd(a, ZSetAlgebra::Diff)
}

#[cfg(test)]
#[path = "zset_tests.rs"]
mod tests;
