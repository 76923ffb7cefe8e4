//! DUMP and RESTORE payloads: one value in Redis's RDB serialization, so
//! that a key dumped from Redis restores into tidal and the other way.
//!
//! A payload is the value's RDB type byte, the value, the RDB version it
//! was written in (2 bytes, little-endian) and a CRC-64 (Jones, as Redis
//! computes it) of everything before it (8 bytes, little-endian).
//!
//! tidal writes the plainest types every Redis since 5.0 loads (RDB
//! version 9): a string, a list as a sequence of strings, a set, a hash as
//! field/value pairs, a sorted set as members with binary scores. It reads
//! those and every compact form Redis 2.6 to 7.4 writes for these five
//! kinds of value (ziplists, listpacks, intsets, quicklists, LZF-compressed
//! strings, integer-encoded strings). Everything is checked as it is read:
//! a payload that is cut short, runs past its own lengths, holds a
//! duplicate field or member, a NaN score, or an empty collection is
//! refused, never half-loaded. Streams are read and written in Redis's
//! stream types (see [`stream_rdb`]); modules and zipmaps are refused.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::collection::{delete_key, for_each_element, live_for_write, member_of, Header};
use super::hash::{self, HashWrite};
use super::list::{self, End, ListWrite};
use super::record::{Kind, Record};
use super::reply::Reply;
use super::set::{self, SetWrite};
use super::store::{KvStore, StoreError};
use super::stream;
use super::zset;

#[path = "rdb_stream.rs"]
mod stream_rdb;
pub use stream_rdb::{GroupValue, StreamValue};

/// The RDB version tidal writes.
const WRITE_VERSION: u16 = 9;
/// The newest RDB version tidal reads (Redis 7.4's).
const READ_VERSION: u16 = 12;

const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_LIST_ZIPLIST: u8 = 10;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_ZSET_ZIPLIST: u8 = 12;
const TYPE_HASH_ZIPLIST: u8 = 13;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
const TYPE_SET_LISTPACK: u8 = 20;

/// A quicklist node of RDB 10 and later: one element on its own.
const NODE_PLAIN: u64 = 1;
/// A quicklist node of RDB 10 and later: a listpack of elements.
const NODE_PACKED: u64 = 2;

const CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// Most bytes a payload's value may take once decoded ([`Value::size`]):
/// a RESTORE is one log entry, and no node takes an entry larger than
/// this. LZF strings and integer encodings make a value larger than its
/// payload, so the limit is kept while decoding, not after it. A node
/// configured for smaller requests refuses smaller values
/// ([`Refusal::TooLarge`] is the same answer).
pub const MAX_DECODED: usize = 64 << 20;
/// What each element costs against [`MAX_DECODED`] besides its bytes.
const ELEMENT_COST: usize = 8;

/// One key's value, as a payload carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    String(#[serde(with = "serde_bytes")] Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    ZSet(Vec<(Vec<u8>, f64)>),
    Stream(Box<StreamValue>),
}

/// What RESTORE puts under its key: a payload's value and its TTL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restoring {
    pub value: Value,
    /// Milliseconds from the apply time, or a unix time in milliseconds
    /// when `absolute`; 0 is no TTL.
    pub ttl_ms: i64,
    pub absolute: bool,
}

impl Value {
    /// What the value takes: its bytes, and a little for each element.
    pub fn size(&self) -> usize {
        let all = |items: &[Vec<u8>]| items.iter().map(|i| i.len() + ELEMENT_COST).sum();
        match self {
            Value::String(s) => s.len() + ELEMENT_COST,
            Value::List(items) | Value::Set(items) => all(items),
            Value::Hash(pairs) => pairs.iter().map(|(f, v)| f.len() + v.len() + 2 * ELEMENT_COST).sum(),
            Value::ZSet(members) => members.iter().map(|(m, _)| m.len() + ELEMENT_COST).sum(),
            Value::Stream(s) => s.size(),
        }
    }
}

/// Why RESTORE refuses its arguments. Redis looks at them only once it
/// knows the key is free (or REPLACE is given), so the refusal travels to
/// the key's PRG, which answers BUSYKEY first when the key exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The TTL is not an integer.
    TtlNotInteger,
    /// The TTL is negative.
    TtlNegative,
    /// Too short, a version newer than tidal reads, or a wrong checksum.
    Footer,
    /// The value itself does not decode.
    Format,
    /// The value is larger than tidal takes in one write, once decoded.
    TooLarge,
}

impl Refusal {
    /// Redis's error reply for it.
    pub fn reply(self) -> Reply {
        Reply::err(match self {
            Refusal::TtlNotInteger => "value is not an integer or out of range",
            Refusal::TtlNegative => "Invalid TTL value, must be >= 0",
            Refusal::Footer => "DUMP payload version or checksum are wrong",
            Refusal::Format => "Bad data format",
            Refusal::TooLarge => "DUMP payload's value is too large for one write once decoded",
        })
    }
}

/// The DUMP payload of `value`.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    match value {
        Value::String(s) => {
            out.push(TYPE_STRING);
            put_string(&mut out, s);
        }
        Value::List(items) | Value::Set(items) => {
            out.push(if matches!(value, Value::List(_)) { TYPE_LIST } else { TYPE_SET });
            put_len(&mut out, items.len() as u64);
            for item in items {
                put_string(&mut out, item);
            }
        }
        Value::Hash(pairs) => {
            out.push(TYPE_HASH);
            put_len(&mut out, pairs.len() as u64);
            for (field, v) in pairs {
                put_string(&mut out, field);
                put_string(&mut out, v);
            }
        }
        Value::ZSet(members) => {
            out.push(TYPE_ZSET_2);
            put_len(&mut out, members.len() as u64);
            for (member, score) in members {
                put_string(&mut out, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Value::Stream(s) => stream_rdb::encode(&mut out, s),
    }
    let version = if matches!(value, Value::Stream(_)) { stream_rdb::STREAM_VERSION } else { WRITE_VERSION };
    out.extend_from_slice(&version.to_le_bytes());
    let crc = CRC.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The value a DUMP payload holds.
pub fn decode(payload: &[u8]) -> Result<Value, Refusal> {
    decode_within(payload, MAX_DECODED)
}

/// [`decode`], for a value smaller than `limit` ([`Value::size`]).
fn decode_within(payload: &[u8], limit: usize) -> Result<Value, Refusal> {
    let Some(body_len) = payload.len().checked_sub(10) else { return Err(Refusal::Footer) };
    let (body, footer) = payload.split_at(body_len);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..].try_into().expect("8 bytes"));
    if version > READ_VERSION || CRC.checksum(&payload[..body_len + 2]) != crc {
        return Err(Refusal::Footer);
    }
    let mut r = Reader { buf: body, budget: limit };
    let value = r.value();
    if r.budget == 0 {
        return Err(Refusal::TooLarge);
    }
    let value = value.ok_or(Refusal::Format)?;
    if !r.buf.is_empty() || is_empty(&value) || !distinct(&value) {
        return Err(Refusal::Format);
    }
    Ok(value)
}

fn is_empty(value: &Value) -> bool {
    match value {
        // A stream may be empty.
        Value::String(_) | Value::Stream(_) => false,
        Value::List(v) | Value::Set(v) => v.is_empty(),
        Value::Hash(v) => v.is_empty(),
        Value::ZSet(v) => v.is_empty(),
    }
}

/// No field or member twice (a corrupt payload's; Redis refuses it too).
fn distinct(value: &Value) -> bool {
    fn all_new<'a>(names: impl ExactSizeIterator<Item = &'a [u8]>) -> bool {
        let mut seen = HashSet::with_capacity(names.len());
        names.into_iter().all(|n| seen.insert(n))
    }
    match value {
        // A stream's entries and groups are checked as they are read.
        Value::String(_) | Value::List(_) | Value::Stream(_) => true,
        Value::Set(v) => all_new(v.iter().map(Vec::as_slice)),
        Value::Hash(v) => all_new(v.iter().map(|(f, _)| f.as_slice())),
        Value::ZSet(v) => all_new(v.iter().map(|(m, _)| m.as_slice())),
    }
}

/// An RDB length: 6 bits, 14 bits, 32 or 64 bits big-endian.
fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
    } else if let Ok(len) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// An RDB length, or a string's special encoding.
enum Len {
    Plain(u64),
    /// The low 6 bits of an `11xxxxxx` byte: 0–2 an integer of 1, 2 or 4
    /// bytes, 3 an LZF-compressed string.
    Encoded(u8),
}

const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// A cursor over a payload; every read is bounds-checked and `None` at
/// the first thing that does not fit. `budget` is what the value may
/// still take once decoded; 0 means it ran out (and reading stopped).
struct Reader<'a> {
    buf: &'a [u8],
    budget: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn raw_len(&mut self) -> Option<Len> {
        let first = self.byte()?;
        Some(match first >> 6 {
            0 => Len::Plain(u64::from(first & 0x3f)),
            1 => Len::Plain(u64::from(first & 0x3f) << 8 | u64::from(self.byte()?)),
            2 => match first {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.array()?))),
                0x81 => Len::Plain(u64::from_be_bytes(self.array()?)),
                _ => return None,
            },
            _ => Len::Encoded(first & 0x3f),
        })
    }

    fn len(&mut self) -> Option<usize> {
        match self.raw_len()? {
            Len::Plain(n) => usize::try_from(n).ok(),
            Len::Encoded(_) => None,
        }
    }

    /// A count of items that are each at least one byte long: more than
    /// the bytes left is a corrupt payload (and must not size a buffer).
    fn count(&mut self) -> Option<usize> {
        self.len().filter(|&n| n <= self.buf.len())
    }

    /// Takes `item` against the budget.
    fn spend(&mut self, item: Vec<u8>) -> Option<Vec<u8>> {
        match self.budget.checked_sub(item.len() + ELEMENT_COST) {
            Some(left) if left > 0 => {
                self.budget = left;
                Some(item)
            }
            _ => {
                self.budget = 0;
                None
            }
        }
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        let s = self.plain_string()?;
        self.spend(s)
    }

    /// The elements of a ziplist, listpack or intset held in a string;
    /// they, not the string, count against the budget.
    fn blob(&mut self, elements: fn(&[u8]) -> Option<Vec<Vec<u8>>>) -> Option<Vec<Vec<u8>>> {
        let blob = self.plain_string()?;
        elements(&blob)?.into_iter().map(|e| self.spend(e)).collect()
    }

    fn plain_string(&mut self) -> Option<Vec<u8>> {
        match self.raw_len()? {
            Len::Plain(n) => Some(self.take(usize::try_from(n).ok()?)?.to_vec()),
            Len::Encoded(ENC_INT8) => Some(i64::from(i8::from_le_bytes(self.array()?)).to_string().into_bytes()),
            Len::Encoded(ENC_INT16) => Some(i64::from(i16::from_le_bytes(self.array()?)).to_string().into_bytes()),
            Len::Encoded(ENC_INT32) => Some(i64::from(i32::from_le_bytes(self.array()?)).to_string().into_bytes()),
            Len::Encoded(ENC_LZF) => {
                let compressed = self.len()?;
                let plain = self.len()?;
                if plain >= self.budget {
                    self.budget = 0;
                    return None;
                }
                lzf_decompress(self.take(compressed)?, plain)
            }
            Len::Encoded(_) => None,
        }
    }

    fn strings(&mut self) -> Option<Vec<Vec<u8>>> {
        let n = self.count()?;
        (0..n).map(|_| self.string()).collect()
    }

    fn pairs(items: Vec<Vec<u8>>) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        if !items.len().is_multiple_of(2) {
            return None;
        }
        let mut it = items.into_iter();
        let mut out = Vec::with_capacity(it.len() / 2);
        while let (Some(a), Some(b)) = (it.next(), it.next()) {
            out.push((a, b));
        }
        Some(out)
    }

    fn scored(items: Vec<Vec<u8>>) -> Option<Vec<(Vec<u8>, f64)>> {
        Self::pairs(items)?.into_iter().map(|(m, s)| Some((m, text_score(&s)?))).collect()
    }

    fn value(&mut self) -> Option<Value> {
        let kind = self.byte()?;
        Some(match kind {
            TYPE_STRING => Value::String(self.string()?),
            TYPE_LIST => Value::List(self.strings()?),
            TYPE_SET => Value::Set(self.strings()?),
            TYPE_HASH => {
                let n = self.count()?;
                Value::Hash((0..n).map(|_| Some((self.string()?, self.string()?))).collect::<Option<_>>()?)
            }
            TYPE_ZSET | TYPE_ZSET_2 => {
                let n = self.count()?;
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    let member = self.string()?;
                    let score = if kind == TYPE_ZSET_2 { f64::from_le_bytes(self.array()?) } else { self.old_score()? };
                    if score.is_nan() {
                        return None;
                    }
                    out.push((member, score));
                }
                Value::ZSet(out)
            }
            stream_rdb::TYPE_STREAM | stream_rdb::TYPE_STREAM_2 | stream_rdb::TYPE_STREAM_3 => {
                Value::Stream(Box::new(self.stream(kind)?))
            }
            TYPE_LIST_ZIPLIST => Value::List(self.blob(ziplist)?),
            TYPE_SET_INTSET => Value::Set(self.blob(intset)?),
            TYPE_SET_LISTPACK => Value::Set(self.blob(listpack)?),
            TYPE_ZSET_ZIPLIST => Value::ZSet(Self::scored(self.blob(ziplist)?)?),
            TYPE_ZSET_LISTPACK => Value::ZSet(Self::scored(self.blob(listpack)?)?),
            TYPE_HASH_ZIPLIST => Value::Hash(Self::pairs(self.blob(ziplist)?)?),
            TYPE_HASH_LISTPACK => Value::Hash(Self::pairs(self.blob(listpack)?)?),
            TYPE_LIST_QUICKLIST => {
                let nodes = self.count()?;
                let mut out = Vec::new();
                for _ in 0..nodes {
                    out.extend(self.blob(ziplist)?);
                }
                Value::List(out)
            }
            TYPE_LIST_QUICKLIST_2 => {
                let nodes = self.count()?;
                let mut out = Vec::new();
                for _ in 0..nodes {
                    match u64::try_from(self.len()?).ok()? {
                        NODE_PLAIN => out.push(self.string()?),
                        NODE_PACKED => out.extend(self.blob(listpack)?),
                        _ => return None,
                    }
                }
                Value::List(out)
            }
            _ => return None,
        })
    }

    /// A score of the oldest sorted-set type: a length byte, then the
    /// score as text (253, 254 and 255 stand for NaN, +inf and -inf).
    fn old_score(&mut self) -> Option<f64> {
        match self.byte()? {
            253 => Some(f64::NAN),
            254 => Some(f64::INFINITY),
            255 => Some(f64::NEG_INFINITY),
            n => text_score(self.take(usize::from(n))?),
        }
    }
}

/// A score written as text in a ziplist, a listpack or the oldest type.
fn text_score(text: &[u8]) -> Option<f64> {
    let score: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    (!score.is_nan()).then_some(score)
}

/// The elements of a ziplist (RDB 2–9's compact lists, hashes and sorted
/// sets): a 10-byte header, entries, and 0xFF.
fn ziplist(blob: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader { buf: blob, budget: usize::MAX };
    let total = u32::from_le_bytes(r.array()?) as usize;
    let _tail = r.array::<4>()?;
    let _count = r.array::<2>()?;
    if total != blob.len() {
        return None;
    }
    let mut out = Vec::new();
    loop {
        let prev = r.byte()?;
        if prev == 0xff {
            break;
        }
        if prev == 0xfe {
            r.take(4)?;
        }
        let enc = r.byte()?;
        let item = match enc >> 6 {
            0 => r.take(usize::from(enc & 0x3f))?.to_vec(),
            1 => {
                let n = usize::from(enc & 0x3f) << 8 | usize::from(r.byte()?);
                r.take(n)?.to_vec()
            }
            2 if enc == 0x80 => {
                let n = u32::from_be_bytes(r.array()?) as usize;
                r.take(n)?.to_vec()
            }
            2 => return None,
            _ => {
                let n: i64 = match enc {
                    0xc0 => i64::from(i16::from_le_bytes(r.array()?)),
                    0xd0 => i64::from(i32::from_le_bytes(r.array()?)),
                    0xe0 => i64::from_le_bytes(r.array()?),
                    0xf0 => {
                        let [a, b, c] = r.array()?;
                        i64::from(i32::from_le_bytes([0, a, b, c]) >> 8)
                    }
                    0xfe => i64::from(i8::from_le_bytes(r.array()?)),
                    0xf1..=0xfd => i64::from(enc & 0x0f) - 1,
                    _ => return None,
                };
                n.to_string().into_bytes()
            }
        };
        out.push(item);
    }
    r.buf.is_empty().then_some(out)
}

/// The elements of a listpack (RDB 10 and later): a 6-byte header,
/// entries each followed by its length backwards, and 0xFF.
fn listpack(blob: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader { buf: blob, budget: usize::MAX };
    let total = u32::from_le_bytes(r.array()?) as usize;
    let _count = r.array::<2>()?;
    if total != blob.len() {
        return None;
    }
    let mut out = Vec::new();
    loop {
        let before = r.buf.len();
        let enc = r.byte()?;
        if enc == 0xff {
            break;
        }
        let item = if enc & 0x80 == 0 {
            (enc & 0x7f).to_string().into_bytes()
        } else if enc & 0xc0 == 0x80 {
            r.take(usize::from(enc & 0x3f))?.to_vec()
        } else if enc & 0xe0 == 0xc0 {
            // 13-bit two's complement.
            let n = i64::from(u16::from(enc & 0x1f) << 8 | u16::from(r.byte()?));
            (if n >= 1 << 12 { n - (1 << 13) } else { n }).to_string().into_bytes()
        } else if enc & 0xf0 == 0xe0 {
            let n = usize::from(enc & 0x0f) << 8 | usize::from(r.byte()?);
            r.take(n)?.to_vec()
        } else {
            match enc {
                0xf0 => {
                    let n = u32::from_le_bytes(r.array()?) as usize;
                    r.take(n)?.to_vec()
                }
                0xf1 => i64::from(i16::from_le_bytes(r.array()?)).to_string().into_bytes(),
                0xf2 => {
                    let [a, b, c] = r.array()?;
                    i64::from(i32::from_le_bytes([0, a, b, c]) >> 8).to_string().into_bytes()
                }
                0xf3 => i64::from(i32::from_le_bytes(r.array()?)).to_string().into_bytes(),
                0xf4 => i64::from_le_bytes(r.array()?).to_string().into_bytes(),
                _ => return None,
            }
        };
        let entry = before - r.buf.len();
        r.take(backlen_size(entry))?;
        out.push(item);
    }
    r.buf.is_empty().then_some(out)
}

/// How many bytes a listpack entry's length, written backwards 7 bits a
/// byte, takes.
fn backlen_size(entry: usize) -> usize {
    match entry {
        0..=127 => 1,
        128..=16_382 => 2,
        16_383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// The members of an intset: its integer width (2, 4 or 8 bytes), its
/// length, and the integers, little-endian.
fn intset(blob: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader { buf: blob, budget: usize::MAX };
    let width = u32::from_le_bytes(r.array()?) as usize;
    let n = u32::from_le_bytes(r.array()?) as usize;
    if !matches!(width, 2 | 4 | 8) || r.buf.len() != n.checked_mul(width)? {
        return None;
    }
    Some(
        r.buf
            .chunks_exact(width)
            .map(|c| {
                let n = match width {
                    2 => i64::from(i16::from_le_bytes([c[0], c[1]])),
                    4 => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                    _ => i64::from_le_bytes(c.try_into().expect("8 bytes")),
                };
                n.to_string().into_bytes()
            })
            .collect(),
    )
}

/// LZF decompression (the format of liblzf, which Redis compresses RDB
/// strings with): a control byte below 32 is a run of that many + 1
/// literal bytes; above, its top 3 bits (7: plus the next byte) + 2 is the
/// length of a copy from earlier output, whose distance back is its low 5
/// bits and the next byte, + 1. The output must be exactly `plain` long.
fn lzf_decompress(input: &[u8], plain: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(plain.min(input.len().saturating_mul(64)));
    let mut r = Reader { buf: input, budget: usize::MAX };
    while let Some(ctrl) = r.byte() {
        if ctrl < 32 {
            out.extend_from_slice(r.take(usize::from(ctrl) + 1)?);
        } else {
            let mut len = usize::from(ctrl >> 5);
            if len == 7 {
                len += usize::from(r.byte()?);
            }
            let back = (usize::from(ctrl & 0x1f) << 8 | usize::from(r.byte()?)) + 1;
            let from = out.len().checked_sub(back)?;
            for i in 0..len + 2 {
                let b = out[from + i];
                out.push(b);
            }
        }
        if out.len() > plain {
            return None;
        }
    }
    (out.len() == plain).then_some(out)
}

/// DUMP: the payload of `key`'s value (`rec` is its live record).
pub(super) fn dump(store: &impl KvStore, key: &[u8], rec: Record) -> Result<Vec<u8>, StoreError> {
    let value = match rec.kind {
        Kind::String => Value::String(rec.value),
        Kind::Hash => Value::Hash(hash::fields(store, key, &Header::from_record(rec))?),
        Kind::Set => {
            let mut members = Vec::new();
            for_each_element(store, key, |sub, _| members.push(member_of(sub).to_vec()))?;
            Value::Set(members)
        }
        Kind::List => Value::List(list::all(store, key, &Header::from_record(rec))?),
        Kind::ZSet => Value::ZSet(zset::scored(store, key, rec)?),
        Kind::Stream => Value::Stream(Box::new(stream::dump(store, key, rec)?)),
    };
    Ok(encode(&value))
}

/// RESTORE at `now_ms`: BUSYKEY if `key` exists and not `replace`, else
/// the refusal if the arguments were bad, else `key` holds the value (an
/// old value is replaced; a TTL already past leaves no key).
pub(super) fn restore(
    store: &mut impl KvStore,
    key: &[u8],
    replace: bool,
    load: &Result<Restoring, Refusal>,
    now_ms: u64,
) -> Result<Reply, StoreError> {
    let exists = live_for_write(store, key, now_ms)?.is_some();
    if exists && !replace {
        return Ok(Reply::Error("BUSYKEY Target key name already exists.".into()));
    }
    let restoring = match load {
        Ok(r) => r,
        Err(refusal) => return Ok(refusal.reply()),
    };
    if exists {
        delete_key(store, key, now_ms)?;
    }
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let deadline = match restoring.ttl_ms {
        0 => None,
        at if restoring.absolute => Some(at),
        ttl => Some(now.saturating_add(ttl)),
    };
    if deadline.is_some_and(|at| at <= now) {
        return Ok(Reply::Ok);
    }
    match &restoring.value {
        Value::String(v) => store.put(key, &Record::new(v.clone()))?,
        Value::Hash(pairs) => {
            hash::apply(store, key, &HashWrite::Set { pairs: pairs.clone(), ok: true }, now_ms)?;
        }
        Value::Set(members) => {
            set::apply(store, key, &SetWrite::Add { members: members.clone() }, now_ms)?;
        }
        Value::List(values) => {
            let push = ListWrite::Push { end: End::Right, values: values.clone(), existing: false };
            list::apply(store, key, &push, now_ms)?;
        }
        Value::ZSet(members) => {
            zset::restore(store, key, members.iter().map(|(m, score)| (*score, m.clone())).collect(), now_ms)?;
        }
        Value::Stream(s) => stream::restore(store, key, s)?,
    }
    if let Some(at) = deadline {
        if let Some(mut rec) = store.get(key)? {
            rec.expire_at_ms = Some(at as u64);
            store.put(key, &rec)?;
        }
    }
    Ok(Reply::Ok)
}

#[cfg(test)]
#[path = "rdb_tests.rs"]
mod tests;
