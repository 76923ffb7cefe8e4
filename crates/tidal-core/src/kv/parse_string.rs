//! Argument rules of the data commands (strings, expiry, keyspace).
//!
//! Each function receives the whole argument list with its arity already
//! checked by [`super::parse`], and mirrors the order in which Redis 7
//! validates, so the first error reported is Redis' first error.

use super::bits::{BitOpKind, BitRange, LcsMode, MAX_BIT_OFFSET};
use super::command::{clip, int, is, take, Command};
use super::conn::KeyspaceCmd;
use super::integer::{parse_cursor, parse_i64};
use super::op::{ExpireAt, ExpireCond, Expiry, GetExExpiry, ObjectInfo, ReadOp, SetCond, WriteOp};
use super::rdb::{self, Refusal, Restoring};
use super::reply::Reply;

type Args = Vec<Vec<u8>>;
type Parsed = Result<Command, Reply>;
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn read(op: ReadOp) -> Parsed {
    Ok(Command::Read(op))
}

fn write(op: WriteOp) -> Parsed {
    Ok(Command::Write(op))
}

fn rest(mut args: Args) -> Vec<Vec<u8>> {
    args.drain(1..).collect()
}

/// Key/value pairs of MSET/MSETNX; an odd count is an arity error in Redis.
fn pairs(name: &str, args: Args) -> Result<Pairs, Reply> {
    if args.len() & 1 == 0 {
        return Err(Reply::wrong_arity(name));
    }
    let mut it = args.into_iter().skip(1);
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

pub(super) fn get(mut a: Args) -> Parsed {
    read(ReadOp::Get { key: take(&mut a, 1) })
}

pub(super) fn mget(a: Args) -> Parsed {
    read(ReadOp::MGet { keys: rest(a) })
}

pub(super) fn exists(a: Args) -> Parsed {
    read(ReadOp::Exists { keys: rest(a) })
}

pub(super) fn touch(a: Args) -> Parsed {
    read(ReadOp::Touch { keys: rest(a) })
}

pub(super) fn del(a: Args) -> Parsed {
    write(WriteOp::Del { keys: rest(a) })
}

pub(super) fn unlink(a: Args) -> Parsed {
    del(a)
}

pub(super) fn mset(a: Args) -> Parsed {
    write(WriteOp::MSet { pairs: pairs("mset", a)? })
}

pub(super) fn msetnx(a: Args) -> Parsed {
    write(WriteOp::MSetNx { pairs: pairs("msetnx", a)? })
}

/// SETNX replies 1/0 exactly like a one-pair MSETNX, so it is one.
pub(super) fn setnx(mut a: Args) -> Parsed {
    write(WriteOp::MSetNx { pairs: vec![(take(&mut a, 1), take(&mut a, 2))] })
}

pub(super) fn getset(mut a: Args) -> Parsed {
    write(WriteOp::Set {
        key: take(&mut a, 1),
        value: take(&mut a, 2),
        expiry: Expiry::None,
        cond: SetCond::None,
        get: true,
    })
}

/// Which expiry option SET/GETEX saw, before its argument is validated.
#[derive(Clone, Copy, PartialEq)]
enum Unit {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// Redis' `getExpireMillisecondsOrReply`: a positive integer that fits in
/// milliseconds. Adding the current time happens at apply.
fn expire_ms(cmd: &str, unit: Unit, arg: &[u8]) -> Result<u64, Reply> {
    let v = int(arg)?;
    let secs = matches!(unit, Unit::Ex | Unit::ExAt);
    if v <= 0 || (secs && v > i64::MAX / 1000) {
        return Err(Reply::invalid_expire(cmd));
    }
    Ok(if secs { v * 1000 } else { v } as u64)
}

/// Options of SET (`for_set`) or GETEX, accepted in any order with Redis'
/// exclusions: NX/XX, and at most one of EX/PX/EXAT/PXAT/KEEPTTL/PERSIST
/// (repeating the same one is allowed; the last value wins).
#[derive(Default)]
struct ExtOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(Unit, usize)>,
}

fn ext_options(args: &[Vec<u8>], start: usize, for_set: bool) -> Result<ExtOptions, Reply> {
    let mut o = ExtOptions::default();
    let mut j = start;
    while j < args.len() {
        let opt = args[j].as_slice();
        let has_next = j + 1 < args.len();
        let unit_is = |u: Unit| o.expire.is_none_or(|(cur, _)| cur == u);
        let no_ttl_flag = !o.keepttl && !o.persist;
        let unit = match opt.to_ascii_uppercase().as_slice() {
            b"EX" => Some(Unit::Ex),
            b"PX" => Some(Unit::Px),
            b"EXAT" => Some(Unit::ExAt),
            b"PXAT" => Some(Unit::PxAt),
            _ => None,
        };
        if for_set && is(opt, "NX") && !o.xx {
            o.nx = true;
        } else if for_set && is(opt, "XX") && !o.nx {
            o.xx = true;
        } else if for_set && is(opt, "GET") {
            o.get = true;
        } else if for_set && is(opt, "KEEPTTL") && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && is(opt, "PERSIST") && o.expire.is_none() {
            o.persist = true;
        } else if let Some(u) = unit.filter(|&u| unit_is(u) && no_ttl_flag && has_next) {
            o.expire = Some((u, j + 1));
            j += 1;
        } else {
            return Err(Reply::syntax());
        }
        j += 1;
    }
    Ok(o)
}

pub(super) fn set(mut a: Args) -> Parsed {
    let o = ext_options(&a, 3, true)?;
    let expiry = match o.expire {
        Some((unit, i)) => {
            let ms = expire_ms("set", unit, &a[i])?;
            match unit {
                Unit::Ex | Unit::Px => Expiry::RelMs(ms),
                Unit::ExAt | Unit::PxAt => Expiry::AtMs(ms),
            }
        }
        None if o.keepttl => Expiry::KeepTtl,
        None => Expiry::None,
    };
    let cond = match (o.nx, o.xx) {
        (true, _) => SetCond::Nx,
        (_, true) => SetCond::Xx,
        _ => SetCond::None,
    };
    write(WriteOp::Set { key: take(&mut a, 1), value: take(&mut a, 2), expiry, cond, get: o.get })
}

fn set_with_ttl(mut a: Args, cmd: &str, unit: Unit) -> Parsed {
    let ms = expire_ms(cmd, unit, &a[2])?;
    write(WriteOp::Set {
        key: take(&mut a, 1),
        value: take(&mut a, 3),
        expiry: Expiry::RelMs(ms),
        cond: SetCond::None,
        get: false,
    })
}

pub(super) fn setex(a: Args) -> Parsed {
    set_with_ttl(a, "setex", Unit::Ex)
}

pub(super) fn psetex(a: Args) -> Parsed {
    set_with_ttl(a, "psetex", Unit::Px)
}

/// GETEX. Redis validates the expire value only after finding the key, so
/// for a missing key it answers nil where tidal already reports the error.
pub(super) fn getex(mut a: Args) -> Parsed {
    let o = ext_options(&a, 2, false)?;
    let expiry = match o.expire {
        Some((unit, i)) => {
            let ms = expire_ms("getex", unit, &a[i])?;
            match unit {
                Unit::Ex | Unit::Px => GetExExpiry::RelMs(ms),
                Unit::ExAt | Unit::PxAt => GetExExpiry::AtMs(ms),
            }
        }
        None if o.persist => GetExExpiry::Persist,
        None => GetExExpiry::Unchanged,
    };
    write(WriteOp::GetEx { key: take(&mut a, 1), expiry })
}

pub(super) fn getdel(mut a: Args) -> Parsed {
    write(WriteOp::GetDel { key: take(&mut a, 1) })
}

fn incr_by(mut a: Args, delta: i64) -> Parsed {
    write(WriteOp::IncrBy { key: take(&mut a, 1), delta })
}

pub(super) fn incr(a: Args) -> Parsed {
    incr_by(a, 1)
}

pub(super) fn decr(a: Args) -> Parsed {
    incr_by(a, -1)
}

pub(super) fn incrby(a: Args) -> Parsed {
    let delta = int(&a[2])?;
    incr_by(a, delta)
}

pub(super) fn decrby(a: Args) -> Parsed {
    let delta = int(&a[2])?;
    if delta == i64::MIN {
        return Err(Reply::err("decrement would overflow"));
    }
    incr_by(a, -delta)
}

/// The increment is checked at apply, after the key's type, as Redis
/// checks it.
pub(super) fn incrbyfloat(mut a: Args) -> Parsed {
    write(WriteOp::IncrByFloat { key: take(&mut a, 1), delta: take(&mut a, 2) })
}

pub(super) fn append(mut a: Args) -> Parsed {
    write(WriteOp::Append { key: take(&mut a, 1), value: take(&mut a, 2) })
}

pub(super) fn setrange(mut a: Args) -> Parsed {
    let offset = int(&a[2])?;
    if offset < 0 {
        return Err(Reply::err("offset is out of range"));
    }
    write(WriteOp::SetRange { key: take(&mut a, 1), offset: offset as u64, value: take(&mut a, 3) })
}

pub(super) fn getrange(mut a: Args) -> Parsed {
    let start = int(&a[2])?;
    let end = int(&a[3])?;
    read(ReadOp::GetRange { key: take(&mut a, 1), start, end })
}

pub(super) fn strlen(mut a: Args) -> Parsed {
    read(ReadOp::Strlen { key: take(&mut a, 1) })
}

pub(super) fn type_(mut a: Args) -> Parsed {
    read(ReadOp::Type { key: take(&mut a, 1) })
}

fn ttl_like(mut a: Args, expire_time: bool, millis: bool) -> Parsed {
    let key = take(&mut a, 1);
    read(if expire_time { ReadOp::ExpireTime { key, millis } } else { ReadOp::Ttl { key, millis } })
}

pub(super) fn ttl(a: Args) -> Parsed {
    ttl_like(a, false, false)
}

pub(super) fn pttl(a: Args) -> Parsed {
    ttl_like(a, false, true)
}

pub(super) fn expiretime(a: Args) -> Parsed {
    ttl_like(a, true, false)
}

pub(super) fn pexpiretime(a: Args) -> Parsed {
    ttl_like(a, true, true)
}

pub(super) fn persist(mut a: Args) -> Parsed {
    write(WriteOp::Persist { key: take(&mut a, 1) })
}

/// A time no clock tidal runs under is behind (2024-01-01, in ms).
const CLOCK_FLOOR_MS: i64 = 1_704_067_200_000;

/// EXPIRE family: flags first (Redis reports a bad flag before a bad time),
/// then the time, converted to milliseconds with Redis' overflow checks.
fn expire_generic(mut a: Args, cmd: &str, secs: bool, absolute: bool) -> Parsed {
    let mut cond = ExpireCond::default();
    for opt in &a[3..] {
        match opt.to_ascii_uppercase().as_slice() {
            b"NX" => cond.nx = true,
            b"XX" => cond.xx = true,
            b"GT" => cond.gt = true,
            b"LT" => cond.lt = true,
            _ => return Err(Reply::err(format!("Unsupported option {}", clip(opt, opt.len())))),
        }
    }
    if cond.nx && (cond.xx || cond.gt || cond.lt) {
        return Err(Reply::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if cond.gt && cond.lt {
        return Err(Reply::err("GT and LT options at the same time are not compatible"));
    }
    let mut when = int(&a[2])?;
    if secs {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(Reply::invalid_expire(cmd));
        }
        when *= 1000;
    }
    // Redis refuses a relative time that overflows once the clock is
    // added, naming the command. A write applies later, where EXPIRE and
    // PEXPIRE are one operation: what overflows under any clock past
    // CLOCK_FLOOR_MS is refused here with the right name.
    if !absolute && when > i64::MAX - CLOCK_FLOOR_MS {
        return Err(Reply::invalid_expire(cmd));
    }
    let at = if absolute { ExpireAt::AtMs(when) } else { ExpireAt::RelMs(when) };
    write(WriteOp::Expire { key: take(&mut a, 1), at, cond })
}

pub(super) fn expire(a: Args) -> Parsed {
    expire_generic(a, "expire", true, false)
}

pub(super) fn pexpire(a: Args) -> Parsed {
    expire_generic(a, "pexpire", false, false)
}

pub(super) fn expireat(a: Args) -> Parsed {
    expire_generic(a, "expireat", true, true)
}

pub(super) fn pexpireat(a: Args) -> Parsed {
    expire_generic(a, "pexpireat", false, true)
}

fn rename_generic(mut a: Args, nx: bool) -> Parsed {
    write(WriteOp::Rename { from: take(&mut a, 1), to: take(&mut a, 2), nx })
}

pub(super) fn rename(a: Args) -> Parsed {
    rename_generic(a, false)
}

pub(super) fn renamenx(a: Args) -> Parsed {
    rename_generic(a, true)
}

pub(super) fn dbsize(_: Args) -> Parsed {
    Ok(Command::Keyspace(KeyspaceCmd::DbSize))
}

pub(super) fn keys(mut a: Args) -> Parsed {
    Ok(Command::Keyspace(KeyspaceCmd::Keys(take(&mut a, 1))))
}

/// `[ASYNC|SYNC]`; anything else, or more arguments, is a syntax error.
fn flush_mode(a: &Args) -> Result<bool, Reply> {
    match a.as_slice() {
        [_] => Ok(false),
        [_, mode] if is(mode, "ASYNC") => Ok(true),
        [_, mode] if is(mode, "SYNC") => Ok(false),
        _ => Err(Reply::syntax()),
    }
}

pub(super) fn flushdb(a: Args) -> Parsed {
    Ok(Command::Keyspace(KeyspaceCmd::FlushDb { lazy: flush_mode(&a)? }))
}

pub(super) fn flushall(a: Args) -> Parsed {
    Ok(Command::Keyspace(KeyspaceCmd::FlushAll { lazy: flush_mode(&a)? }))
}

pub(super) fn scan(mut a: Args) -> Parsed {
    let cursor = parse_cursor(&a[1]).ok_or_else(|| Reply::err("invalid cursor"))?;
    let (mut pattern, mut count, mut type_filter) = (None, None, None);
    let mut i = 2;
    while i < a.len() {
        let has_value = i + 1 < a.len();
        if is(&a[i], "COUNT") && has_value {
            let n = int(&a[i + 1])?;
            if n < 1 {
                return Err(Reply::syntax());
            }
            count = Some(n as usize);
        } else if is(&a[i], "MATCH") && has_value {
            let p = take(&mut a, i + 1);
            pattern = (p.as_slice() != b"*").then_some(p);
        } else if is(&a[i], "TYPE") && has_value {
            type_filter = Some(take(&mut a, i + 1));
        } else {
            return Err(Reply::syntax());
        }
        i += 2;
    }
    Ok(Command::Keyspace(KeyspaceCmd::Scan { cursor, pattern, count, type_filter }))
}

/// A bit offset of SETBIT/GETBIT: 0 up to 2^32 - 1.
fn bit_offset(arg: &[u8]) -> Result<u64, Reply> {
    parse_i64(arg)
        .filter(|n| *n >= 0 && (*n as u64) < MAX_BIT_OFFSET)
        .map(|n| n as u64)
        .ok_or_else(|| Reply::err("bit offset is not an integer or out of range"))
}

pub(super) fn setbit(mut a: Args) -> Parsed {
    let offset = bit_offset(&a[2])?;
    let bit = match a[3].as_slice() {
        b"0" => false,
        b"1" => true,
        _ => return Err(Reply::err("bit is not an integer or out of range")),
    };
    write(WriteOp::SetBit { key: take(&mut a, 1), offset, bit })
}

/// `BITFIELD key [GET type offset] [SET type offset value] [INCRBY type
/// offset increment] [OVERFLOW WRAP|SAT|FAIL] ...`: a read when it only
/// GETs.
pub(super) fn bitfield(mut a: Args) -> Parsed {
    let ops = super::bitfield::parse_ops(&a[2..], false)?;
    let key = take(&mut a, 1);
    if super::bitfield::writes(&ops) {
        write(WriteOp::BitField { key, ops })
    } else {
        read(ReadOp::BitField { key, ops })
    }
}

/// `MEMORY USAGE key [SAMPLES count]`.
pub(super) fn memory_usage(mut a: Args) -> Parsed {
    let samples = match a.len() {
        3 => 5,
        5 if is(&a[3], "SAMPLES") => {
            u64::try_from(int(&a[4])?).map_err(|_| Reply::err("value is out of range, must be positive"))?
        }
        _ => return Err(Reply::syntax()),
    };
    read(ReadOp::MemoryUsage { key: take(&mut a, 2), samples })
}

/// `BITFIELD_RO key [GET type offset] ...`.
pub(super) fn bitfield_ro(mut a: Args) -> Parsed {
    let ops = super::bitfield::parse_ops(&a[2..], true)?;
    read(ReadOp::BitField { key: take(&mut a, 1), ops })
}

pub(super) fn getbit(mut a: Args) -> Parsed {
    let offset = bit_offset(&a[2])?;
    read(ReadOp::GetBit { key: take(&mut a, 1), offset })
}

/// BYTE or BIT, the unit of a BITCOUNT/BITPOS range.
fn bit_unit(arg: &[u8]) -> Result<bool, Reply> {
    if is(arg, "bit") {
        Ok(true)
    } else if is(arg, "byte") {
        Ok(false)
    } else {
        Err(Reply::syntax())
    }
}

pub(super) fn bitcount(mut a: Args) -> Parsed {
    let range = match a.len() {
        2 => None,
        4 | 5 => {
            let (start, end) = (int(&a[2])?, int(&a[3])?);
            let bits = if a.len() == 5 { bit_unit(&a[4])? } else { false };
            Some(BitRange { start, end: Some(end), bits })
        }
        _ => return Err(Reply::syntax()),
    };
    read(ReadOp::BitCount { key: take(&mut a, 1), range })
}

pub(super) fn bitpos(mut a: Args) -> Parsed {
    let bit = match int(&a[2])? {
        0 => false,
        1 => true,
        _ => return Err(Reply::err("The bit argument must be 1 or 0.")),
    };
    let range = match a.len() {
        3 => None,
        4..=6 => {
            let start = int(&a[3])?;
            let bits = if a.len() == 6 { bit_unit(&a[5])? } else { false };
            let end = if a.len() >= 5 { Some(int(&a[4])?) } else { None };
            Some(BitRange { start, end, bits })
        }
        _ => return Err(Reply::syntax()),
    };
    read(ReadOp::BitPos { key: take(&mut a, 1), bit, range })
}

pub(super) fn bitop(mut a: Args) -> Parsed {
    let op = match a[1].to_ascii_lowercase().as_slice() {
        b"and" => BitOpKind::And,
        b"or" => BitOpKind::Or,
        b"xor" => BitOpKind::Xor,
        b"not" => BitOpKind::Not,
        _ => return Err(Reply::syntax()),
    };
    if op == BitOpKind::Not && a.len() != 4 {
        return Err(Reply::err("BITOP NOT must be called with a single source key."));
    }
    let dest = take(&mut a, 2);
    let keys = a.drain(3..).collect();
    write(WriteOp::BitOp { op, dest, keys })
}

pub(super) fn lcs(mut a: Args) -> Parsed {
    let mut mode = LcsMode::default();
    let mut i = 3;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if is(&a[i], "idx") {
            mode.idx = true;
        } else if is(&a[i], "len") {
            mode.len = true;
        } else if is(&a[i], "withmatchlen") {
            mode.with_match_len = true;
        } else if is(&a[i], "minmatchlen") && more > 0 {
            mode.min_match_len = int(&a[i + 1])?.max(0) as u64;
            i += 1;
        } else {
            return Err(Reply::syntax());
        }
        i += 1;
    }
    if mode.idx && mode.len {
        return Err(Reply::err("If you want both the length and indexes, please just use IDX."));
    }
    read(ReadOp::Lcs { a: take(&mut a, 1), b: take(&mut a, 2), mode })
}

pub(super) fn copy(mut a: Args) -> Parsed {
    let mut replace = false;
    let mut i = 3;
    while i < a.len() {
        if is(&a[i], "replace") {
            replace = true;
        } else if is(&a[i], "db") && i + 1 < a.len() {
            let db = int(&a[i + 1])?;
            if db != 0 {
                return Err(Reply::err("Copying to another database is not allowed in cluster mode"));
            }
            i += 1;
        } else {
            return Err(Reply::syntax());
        }
        i += 1;
    }
    if a[1] == a[2] {
        return Err(Reply::err("source and destination objects are the same"));
    }
    write(WriteOp::Copy { from: take(&mut a, 1), to: take(&mut a, 2), replace })
}

pub(super) fn dump(mut a: Args) -> Parsed {
    read(ReadOp::DumpPayload { key: take(&mut a, 1) })
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s | FREQ f]. The
/// options are checked here; the TTL and the payload are too, but their
/// refusal is answered by the key's PRG after it checks that the key is
/// free, as Redis orders the errors. tidal keeps no access times or
/// counts, so IDLETIME and FREQ are checked and dropped.
pub(super) fn restore(mut a: Args) -> Parsed {
    let (mut replace, mut absolute, mut idle, mut freq) = (false, false, false, false);
    let mut i = 4;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if is(&a[i], "replace") {
            replace = true;
        } else if is(&a[i], "absttl") {
            absolute = true;
        } else if is(&a[i], "idletime") && more > 0 && !freq {
            if int(&a[i + 1])? < 0 {
                return Err(Reply::err("Invalid IDLETIME value, must be >= 0"));
            }
            idle = true;
            i += 1;
        } else if is(&a[i], "freq") && more > 0 && !idle {
            if !(0..=255).contains(&int(&a[i + 1])?) {
                return Err(Reply::err("Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = true;
            i += 1;
        } else {
            return Err(Reply::syntax());
        }
        i += 1;
    }
    let load = match parse_i64(&a[2]) {
        None => Err(Refusal::TtlNotInteger),
        Some(ttl) if ttl < 0 => Err(Refusal::TtlNegative),
        Some(ttl_ms) => rdb::decode(&a[3]).map(|value| Restoring { value, ttl_ms, absolute }),
    };
    write(WriteOp::RestorePayload { key: take(&mut a, 1), replace, load })
}

fn object(mut a: Args, what: ObjectInfo) -> Parsed {
    read(ReadOp::Object { key: take(&mut a, 2), what })
}

pub(super) fn object_encoding(a: Args) -> Parsed {
    object(a, ObjectInfo::Encoding { limits: super::config::encoding_defaults() })
}

pub(super) fn object_freq(a: Args) -> Parsed {
    object(a, ObjectInfo::Freq)
}

pub(super) fn object_idletime(a: Args) -> Parsed {
    object(a, ObjectInfo::IdleTime)
}

pub(super) fn object_refcount(a: Args) -> Parsed {
    object(a, ObjectInfo::RefCount)
}

pub(super) fn randomkey(_: Args) -> Parsed {
    Ok(Command::Keyspace(KeyspaceCmd::RandomKey))
}
