//! The data operations tidal replicates and serves.
//!
//! A [`WriteOp`] is what goes into a group's Raft log: it is applied by every
//! replica with the `now_ms` stamped in the log entry, so everything that
//! depends on time (relative TTLs, "is this key expired?") is decided at
//! apply time from that stamp, never from a local clock. A [`ReadOp`] is
//! evaluated against one consistent view of a group at the serving node's
//! `now_ms`.
//!
//! Ops are already validated: the parser rejects malformed arguments, so
//! the engine only produces the errors Redis reports after looking at data.
//! One approximation: when a relative time overflows once the apply time is
//! added, the error names the op family (`'set'`, `'getex'`, `'expire'`)
//! where Redis would name the exact command (`'setex'`, `'pexpire'`, ...);
//! only absurd inputs near `i64::MAX` milliseconds reach it.

use serde::{Deserialize, Serialize};

use super::bitfield::FieldOp;
use super::bits::{BitOpKind, BitRange, LcsMode};
use super::hash::{HashRead, HashWrite};
use super::list::{End, ListRead, ListWrite};
use super::rdb::{Refusal, Restoring};
use super::record::{Kind, Record};
use super::set::{SetRead, SetWrite};
use super::sort::SortSpec;
use super::stream::{NodeLimits, StreamRead, StreamWrite};
use super::stream_group::GroupWrite;
use super::zset::{ZSetAlgebra, ZSetRead, ZSetWrite};

/// The expiry part of SET (`EX`/`PX`/`EXAT`/`PXAT`/`KEEPTTL`, SETEX, PSETEX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiry {
    /// No expiry option: the new value has no TTL.
    None,
    /// Keep whatever TTL the key had.
    KeepTtl,
    /// Expire this many milliseconds (> 0) after the apply time.
    RelMs(u64),
    /// Expire at this unix time in milliseconds (> 0).
    AtMs(u64),
}

/// SET's existence condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetCond {
    None,
    /// Only set if the key does not exist.
    Nx,
    /// Only set if the key exists.
    Xx,
}

/// The expiry change GETEX makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GetExExpiry {
    /// No option: plain GET.
    Unchanged,
    Persist,
    RelMs(u64),
    AtMs(u64),
}

/// The new deadline of EXPIRE and friends. Signed and unrestricted like
/// Redis: a deadline at or before the apply time deletes the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpireAt {
    /// EXPIRE / PEXPIRE, already in milliseconds.
    RelMs(i64),
    /// EXPIREAT / PEXPIREAT, already in milliseconds.
    AtMs(i64),
}

/// EXPIRE's `NX`/`XX`/`GT`/`LT` flags. Redis accepts `XX` together with
/// `GT` or `LT`, so this is a set of flags rather than one choice; the
/// parser rejects the incompatible combinations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireCond {
    /// Only if the key has no TTL.
    pub nx: bool,
    /// Only if the key has a TTL.
    pub xx: bool,
    /// Only if the new deadline is later (no TTL counts as infinitely late).
    pub gt: bool,
    /// Only if the new deadline is earlier (no TTL counts as infinitely late).
    pub lt: bool,
}

/// A replicated mutation of one group's keyspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WriteOp {
    /// SET, SETEX, PSETEX, GETSET. `get` makes the reply the old value.
    Set {
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        expiry: Expiry,
        cond: SetCond,
        get: bool,
    },
    /// DEL / UNLINK; replies with how many keys existed.
    Del {
        keys: Vec<Vec<u8>>,
    },
    /// INCR / DECR / INCRBY / DECRBY.
    IncrBy {
        key: Vec<u8>,
        delta: i64,
    },
    /// INCRBYFLOAT. The increment is kept as the client's text (already
    /// validated) because Redis parses it as an 80-bit `long double`,
    /// which an `f64` cannot carry.
    IncrByFloat {
        key: Vec<u8>,
        delta: Vec<u8>,
    },
    Append {
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// SETRANGE; `offset` was checked non-negative by the parser.
    SetRange {
        key: Vec<u8>,
        offset: u64,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    GetDel {
        key: Vec<u8>,
    },
    GetEx {
        key: Vec<u8>,
        expiry: GetExExpiry,
    },
    /// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT.
    Expire {
        key: Vec<u8>,
        at: ExpireAt,
        cond: ExpireCond,
    },
    Persist {
        key: Vec<u8>,
    },
    /// MSET: sets every pair, clearing TTLs; later duplicates win.
    MSet {
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// MSETNX, and SETNX as its one-pair case (both reply 1 or 0).
    MSetNx {
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// RENAME / RENAMENX within one group (the TTL moves with the value).
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
        nx: bool,
    },
    /// FLUSHDB / FLUSHALL of this group.
    Flush,
    /// Internal: install (`Some`) or remove (`None`) a key exactly, TTL
    /// included. Moves a key between groups for a cross-group RENAME.
    Restore {
        key: Vec<u8>,
        record: Option<Record>,
    },
    /// SETBIT: replies with the bit's old value.
    SetBit {
        key: Vec<u8>,
        offset: u64,
        bit: bool,
    },
    /// BITOP into `dest` (all keys in one slot); replies with the result's
    /// length. An empty result deletes `dest`.
    BitOp {
        op: BitOpKind,
        dest: Vec<u8>,
        keys: Vec<Vec<u8>>,
    },
    /// COPY within one slot (the TTL is copied too); 1 when copied.
    Copy {
        from: Vec<u8>,
        to: Vec<u8>,
        replace: bool,
    },
    /// A transaction (EXEC) of one slot: when every watched key still has
    /// the version WATCH read, the ops run in order and the reply is the
    /// array of theirs; otherwise nothing runs and the reply is nil.
    Exec {
        watch: Option<Watch>,
        ops: Vec<TxOp>,
    },
    /// A hash command on `key`.
    Hash {
        key: Vec<u8>,
        op: HashWrite,
    },
    /// A set command on `key` (SMOVE's source, a STORE form's destination).
    Members {
        key: Vec<u8>,
        op: SetWrite,
    },
    /// A list command on `key` (LMOVE's source, LMPOP's first key).
    List {
        key: Vec<u8>,
        op: ListWrite,
    },
    /// A sorted-set command on `key` (a STORE form's destination).
    ZSet {
        key: Vec<u8>,
        op: ZSetWrite,
    },
    /// BITFIELD with at least one SET or INCRBY.
    BitField {
        key: Vec<u8>,
        ops: Vec<FieldOp>,
    },
    /// A stream command on `key`.
    Stream {
        key: Vec<u8>,
        op: StreamWrite,
    },
    /// SORT `key` ... STORE `dest`.
    Sort {
        key: Vec<u8>,
        dest: Vec<u8>,
        spec: SortSpec,
    },
    /// Internal (active expiry): delete each of `keys` (all of one slot)
    /// whose TTL has passed when the entry applies, with its element rows;
    /// a key written since the leader found it expired stays. Replies
    /// with how many went.
    Reap {
        keys: Vec<Vec<u8>>,
    },
    /// RESTORE: `key` gets a DUMP payload's value, decoded by the node
    /// that took the command (see [`super::rdb::restore`]).
    RestorePayload {
        key: Vec<u8>,
        replace: bool,
        load: Result<Restoring, Refusal>,
    },
    /// What a script (EVAL) wrote, run at the PRG's leader against its
    /// applied state at `at_ms` (a script sees one instant, as in Redis):
    /// when every key it touched still has the version it saw, `ops` apply
    /// in order at `at_ms`, and the reply is their count; otherwise none
    /// applies and the reply is nil (the leader runs the script again).
    Script {
        watch: Watch,
        at_ms: u64,
        ops: Vec<WriteOp>,
    },
}

/// The keys a connection watches, with the versions WATCH read from the
/// PRG named (a version means nothing in another PRG's log: the PRG that
/// applies the transaction checks that it is that one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub prg: String,
    pub keys: Vec<(Vec<u8>, u64)>,
}

/// A query against one consistent view of a group's keyspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReadOp {
    /// GET.
    Get {
        key: Vec<u8>,
    },
    MGet {
        keys: Vec<Vec<u8>>,
    },
    /// EXISTS; duplicates count once each time they appear, like Redis.
    Exists {
        keys: Vec<Vec<u8>>,
    },
    /// TOUCH: counts existing keys (tidal keeps no access times).
    Touch {
        keys: Vec<Vec<u8>>,
    },
    /// TTL (`millis: false`) / PTTL.
    Ttl {
        key: Vec<u8>,
        millis: bool,
    },
    /// EXPIRETIME / PEXPIRETIME.
    ExpireTime {
        key: Vec<u8>,
        millis: bool,
    },
    Strlen {
        key: Vec<u8>,
    },
    /// GETRANGE / SUBSTR.
    GetRange {
        key: Vec<u8>,
        start: i64,
        end: i64,
    },
    Type {
        key: Vec<u8>,
    },
    /// Internal: the key's encoded [`Record`] as a bulk string, or nil.
    Dump {
        key: Vec<u8>,
    },
    /// Live keys in this group.
    DbSize,
    /// Internal page of a cross-group SCAN over the slots `slots`, in slot
    /// order and key order within a slot: examines up to `count` stored
    /// keys after `after` (a key of the first slot; from the first slot's
    /// start when `None`) and returns the live ones matching `pattern`. A
    /// group serves the run of those slots it serves, from the first, and
    /// says where it stopped. Reply: see [`super::ScanPage`].
    Scan {
        slots: std::ops::Range<u32>,
        after: Option<Vec<u8>>,
        count: usize,
        pattern: Option<Vec<u8>>,
        /// Only keys holding this kind (SCAN's TYPE).
        kind: Option<Kind>,
    },
    /// Live keys of this group matching a glob pattern.
    Keys {
        pattern: Vec<u8>,
    },
    /// Internal: each key's [`Record::version`], 0 for a key that does
    /// not exist (WATCH).
    Versions {
        keys: Vec<Vec<u8>>,
    },
    GetBit {
        key: Vec<u8>,
        offset: u64,
    },
    BitCount {
        key: Vec<u8>,
        range: Option<BitRange>,
    },
    BitPos {
        key: Vec<u8>,
        bit: bool,
        range: Option<BitRange>,
    },
    /// LCS of two keys of one slot.
    Lcs {
        a: Vec<u8>,
        b: Vec<u8>,
        mode: LcsMode,
    },
    /// OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT.
    Object {
        key: Vec<u8>,
        what: ObjectInfo,
    },
    /// A live key of this group found from a position `seed` picks, or nil
    /// when the group has none (RANDOMKEY asks every group).
    RandomKey {
        seed: u64,
    },
    Hash {
        key: Vec<u8>,
        op: HashRead,
    },
    /// A set command on `key` (the first key of SINTER and its kin).
    Members {
        key: Vec<u8>,
        op: SetRead,
    },
    List {
        key: Vec<u8>,
        op: ListRead,
    },
    ZSet {
        key: Vec<u8>,
        op: ZSetRead,
    },
    /// BITFIELD_RO, or BITFIELD with only GETs.
    BitField {
        key: Vec<u8>,
        ops: Vec<FieldOp>,
    },
    /// A stream command on `key` (XREAD's first key).
    Stream {
        key: Vec<u8>,
        op: StreamRead,
    },
    /// MEMORY USAGE: an estimate from `samples` element rows (0: all).
    MemoryUsage {
        key: Vec<u8>,
        samples: u64,
    },
    /// SORT or SORT_RO without STORE.
    Sort {
        key: Vec<u8>,
        spec: SortSpec,
    },
    /// DUMP: the key's value as a Redis DUMP payload, or nil.
    DumpPayload {
        key: Vec<u8>,
    },
    /// Internal: the changes this group's replica has applied since it
    /// started (Redis's `dirty` count), for INFO.
    Changes,
}

/// What OBJECT asks about a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectInfo {
    /// Under the encoding thresholds of the node that takes the command
    /// (CONFIG SET's values, in [`super::encoding_defaults`]'s order).
    Encoding {
        limits: Vec<i64>,
    },
    Freq,
    IdleTime,
    RefCount,
}

/// One command of a transaction. EXEC runs a transaction's commands in
/// order, in one log entry: reads see the writes before them, and nothing
/// else runs in between.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TxOp {
    Read(ReadOp),
    Write(WriteOp),
}

impl TxOp {
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            TxOp::Read(op) => op.keys(),
            TxOp::Write(op) => op.keys(),
        }
    }

    /// Whether the op may run inside a transaction: it names its keys
    /// (one PRG serves it) and is not internal.
    pub fn transactional(&self) -> bool {
        match self {
            TxOp::Read(op) => !matches!(
                op,
                ReadOp::DbSize
                    | ReadOp::Changes
                    | ReadOp::Scan { .. }
                    | ReadOp::Keys { .. }
                    | ReadOp::Dump { .. }
                    | ReadOp::Versions { .. }
                    | ReadOp::RandomKey { .. }
            ),
            TxOp::Write(op) => {
                !matches!(op, WriteOp::Flush | WriteOp::Restore { .. } | WriteOp::Exec { .. } | WriteOp::Script { .. })
            }
        }
    }
}

fn refs(keys: &[Vec<u8>]) -> Vec<&[u8]> {
    keys.iter().map(Vec::as_slice).collect()
}

impl WriteOp {
    /// A plain `SET key value`: no expiry, no condition, no GET.
    pub fn set(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> WriteOp {
        WriteOp::Set { key: key.into(), value: value.into(), expiry: Expiry::None, cond: SetCond::None, get: false }
    }

    /// The keys the op touches, in argument order (duplicates kept).
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            WriteOp::Set { key, .. }
            | WriteOp::IncrBy { key, .. }
            | WriteOp::IncrByFloat { key, .. }
            | WriteOp::Append { key, .. }
            | WriteOp::SetRange { key, .. }
            | WriteOp::GetDel { key }
            | WriteOp::GetEx { key, .. }
            | WriteOp::Expire { key, .. }
            | WriteOp::Persist { key }
            | WriteOp::Restore { key, .. }
            | WriteOp::RestorePayload { key, .. }
            | WriteOp::SetBit { key, .. }
            | WriteOp::BitField { key, .. }
            | WriteOp::Hash { key, .. } => vec![key],
            WriteOp::Stream { key, op } => std::iter::once(key.as_slice())
                .chain(match op {
                    StreamWrite::Group { op: GroupWrite::Read { others, .. }, .. } => refs(others),
                    _ => Vec::new(),
                })
                .collect(),
            WriteOp::ZSet { key, op } => std::iter::once(key.as_slice())
                .chain(match op {
                    ZSetWrite::Store { sources, .. } => refs(sources),
                    ZSetWrite::MPop { others, .. } => refs(others),
                    ZSetWrite::RangeStore { src, .. } => vec![src.as_slice()],
                    _ => Vec::new(),
                })
                .collect(),
            WriteOp::List { key, op } => std::iter::once(key.as_slice())
                .chain(match op {
                    ListWrite::Move { dest, .. } => vec![dest.as_slice()],
                    ListWrite::MPop { others, .. } | ListWrite::FirstPop { others, .. } => refs(others),
                    _ => Vec::new(),
                })
                .collect(),
            WriteOp::Members { key, op } => std::iter::once(key.as_slice())
                .chain(match op {
                    SetWrite::Move { dest, .. } => vec![dest.as_slice()],
                    SetWrite::Store { sources, .. } => refs(sources),
                    _ => Vec::new(),
                })
                .collect(),
            WriteOp::Del { keys } | WriteOp::Reap { keys } => refs(keys),
            WriteOp::BitOp { dest, keys, .. } => std::iter::once(dest.as_slice()).chain(refs(keys)).collect(),
            WriteOp::Copy { from, to, .. } => vec![from, to],
            WriteOp::Sort { key, dest, spec } => {
                [key.as_slice(), dest].into_iter().chain(spec.pattern_keys()).collect()
            }
            WriteOp::Exec { watch, ops } => ops
                .iter()
                .flat_map(TxOp::keys)
                .chain(watch.iter().flat_map(|w| w.keys.iter().map(|(k, _)| k.as_slice())))
                .collect(),
            WriteOp::Script { watch, ops, .. } => {
                ops.iter().flat_map(WriteOp::keys).chain(watch.keys.iter().map(|(k, _)| k.as_slice())).collect()
            }
            WriteOp::MSet { pairs } | WriteOp::MSetNx { pairs } => pairs.iter().map(|(k, _)| k.as_slice()).collect(),
            WriteOp::Rename { from, to, .. } => vec![from, to],
            WriteOp::Flush => Vec::new(),
        }
    }

    /// Whether the op names several keys, which may live in different groups.
    pub fn is_multi_key(&self) -> bool {
        matches!(
            self,
            WriteOp::Del { .. }
                | WriteOp::MSet { .. }
                | WriteOp::MSetNx { .. }
                | WriteOp::Rename { .. }
                | WriteOp::BitOp { .. }
                | WriteOp::Copy { .. }
                | WriteOp::Exec { .. }
                | WriteOp::Script { .. }
        ) || (matches!(
            self,
            WriteOp::Members { .. }
                | WriteOp::List { .. }
                | WriteOp::ZSet { .. }
                | WriteOp::Sort { .. }
                | WriteOp::Stream { .. }
        ) && self.keys().len() > 1)
    }

    /// The seed of a write that picks at random (SPOP), which the node
    /// that receives it sets so that every replica picks alike.
    pub fn seed_mut(&mut self) -> Option<&mut u64> {
        match self {
            WriteOp::Members { op: SetWrite::Pop { seed, .. }, .. } => Some(seed),
            _ => None,
        }
    }

    /// The node sizes of a stream write that adds or trims, which the
    /// node that takes it sets from its CONFIG.
    pub fn node_limits_mut(&mut self) -> Option<&mut NodeLimits> {
        match self {
            WriteOp::Stream { op: StreamWrite::Add { node, .. } | StreamWrite::Trim { node, .. }, .. } => Some(node),
            _ => None,
        }
    }

    /// The command a multi-key write came from, for its CROSSSLOT error.
    pub fn command_name(&self) -> &'static str {
        match self {
            WriteOp::MSetNx { .. } => "MSETNX",
            WriteOp::BitOp { .. } => "BITOP",
            WriteOp::Copy { .. } => "COPY",
            WriteOp::Stream { .. } => "XREADGROUP",
            WriteOp::Sort { .. } => "SORT",
            WriteOp::Members { op: SetWrite::Move { .. }, .. } => "SMOVE",
            WriteOp::List { op: ListWrite::Move { .. }, .. } => "LMOVE",
            WriteOp::List { op: ListWrite::MPop { .. }, .. } => "LMPOP",
            WriteOp::List { op: ListWrite::FirstPop { end: End::Left, .. }, .. } => "BLPOP",
            WriteOp::List { op: ListWrite::FirstPop { end: End::Right, .. }, .. } => "BRPOP",
            WriteOp::ZSet { op: ZSetWrite::MPop { count: Some(_), .. }, .. } => "ZMPOP",
            WriteOp::ZSet { op: ZSetWrite::RangeStore { .. }, .. } => "ZRANGESTORE",
            WriteOp::ZSet { op: ZSetWrite::MPop { max: false, .. }, .. } => "BZPOPMIN",
            WriteOp::ZSet { op: ZSetWrite::MPop { max: true, .. }, .. } => "BZPOPMAX",
            WriteOp::ZSet { op: ZSetWrite::Store { op, .. }, .. } => match op {
                ZSetAlgebra::Union => "ZUNIONSTORE",
                ZSetAlgebra::Inter => "ZINTERSTORE",
                ZSetAlgebra::Diff => "ZDIFFSTORE",
            },
            WriteOp::Members { op: SetWrite::Store { op, .. }, .. } => match op {
                super::set::SetAlgebra::Inter => "SINTERSTORE",
                super::set::SetAlgebra::Union => "SUNIONSTORE",
                super::set::SetAlgebra::Diff => "SDIFFSTORE",
            },
            _ => "this command",
        }
    }
}

impl ReadOp {
    /// The keys the op reads, in argument order (duplicates kept).
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            ReadOp::Get { key }
            | ReadOp::Ttl { key, .. }
            | ReadOp::ExpireTime { key, .. }
            | ReadOp::Strlen { key }
            | ReadOp::GetRange { key, .. }
            | ReadOp::Type { key }
            | ReadOp::Dump { key }
            | ReadOp::DumpPayload { key }
            | ReadOp::GetBit { key, .. }
            | ReadOp::BitField { key, .. }
            | ReadOp::MemoryUsage { key, .. }
            | ReadOp::BitCount { key, .. }
            | ReadOp::BitPos { key, .. }
            | ReadOp::Object { key, .. }
            | ReadOp::Hash { key, .. }
            | ReadOp::List { key, .. } => vec![key],
            ReadOp::ZSet { key, op } => std::iter::once(key.as_slice())
                .chain(match op {
                    ZSetRead::Algebra { others, .. } | ZSetRead::InterCard { others, .. } => refs(others),
                    _ => Vec::new(),
                })
                .collect(),
            ReadOp::Members { key, op } => std::iter::once(key.as_slice())
                .chain(match op {
                    SetRead::Algebra { others, .. } | SetRead::InterCard { others, .. } => refs(others),
                    _ => Vec::new(),
                })
                .collect(),
            ReadOp::Lcs { a, b, .. } => vec![a, b],
            ReadOp::Stream { key, op } => std::iter::once(key.as_slice())
                .chain(match op {
                    StreamRead::Read { others, .. } | StreamRead::LastIds { others } => refs(others),
                    _ => Vec::new(),
                })
                .collect(),
            ReadOp::Sort { key, spec } => std::iter::once(key.as_slice()).chain(spec.pattern_keys()).collect(),
            ReadOp::MGet { keys } | ReadOp::Exists { keys } | ReadOp::Touch { keys } | ReadOp::Versions { keys } => {
                refs(keys)
            }
            ReadOp::DbSize | ReadOp::Changes | ReadOp::Scan { .. } | ReadOp::Keys { .. } | ReadOp::RandomKey { .. } => {
                Vec::new()
            }
        }
    }

    /// Whether the op names several keys, which may live in different groups.
    pub fn is_multi_key(&self) -> bool {
        matches!(self, ReadOp::MGet { .. } | ReadOp::Exists { .. } | ReadOp::Touch { .. } | ReadOp::Lcs { .. })
            || (matches!(self, ReadOp::Members { .. } | ReadOp::Sort { .. } | ReadOp::Stream { .. })
                && self.keys().len() > 1)
    }

    /// The seed of a read that picks at random (HRANDFIELD, SRANDMEMBER),
    /// which the node that serves it sets.
    pub fn seed_mut(&mut self) -> Option<&mut u64> {
        match self {
            ReadOp::Hash { op: HashRead::RandField { seed, .. }, .. }
            | ReadOp::Members { op: SetRead::RandMember { seed, .. }, .. }
            | ReadOp::ZSet { op: ZSetRead::RandMember { seed, .. }, .. } => Some(seed),
            _ => None,
        }
    }

    /// The encoding thresholds OBJECT ENCODING judges by, which the node
    /// that takes it sets.
    pub fn limits_mut(&mut self) -> Option<&mut Vec<i64>> {
        match self {
            ReadOp::Object { what: ObjectInfo::Encoding { limits }, .. } => Some(limits),
            _ => None,
        }
    }

    /// The command a multi-key read came from, for its CROSSSLOT error.
    pub fn command_name(&self) -> &'static str {
        match self {
            ReadOp::Lcs { .. } => "LCS",
            ReadOp::Stream { .. } => "XREAD",
            ReadOp::Sort { .. } => "SORT",
            ReadOp::ZSet { op: ZSetRead::InterCard { .. }, .. } => "ZINTERCARD",
            ReadOp::ZSet { op: ZSetRead::Algebra { op, .. }, .. } => match op {
                ZSetAlgebra::Union => "ZUNION",
                ZSetAlgebra::Inter => "ZINTER",
                ZSetAlgebra::Diff => "ZDIFF",
            },
            ReadOp::Members { op: SetRead::InterCard { .. }, .. } => "SINTERCARD",
            ReadOp::Members { op: SetRead::Algebra { op, .. }, .. } => match op {
                super::set::SetAlgebra::Inter => "SINTER",
                super::set::SetAlgebra::Union => "SUNION",
                super::set::SetAlgebra::Diff => "SDIFF",
            },
            _ => "this command",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_argument_order() {
        let op = WriteOp::MSet { pairs: vec![(b"b".to_vec(), b"1".to_vec()), (b"a".to_vec(), b"2".to_vec())] };
        assert_eq!(op.keys(), vec![&b"b"[..], b"a"]);
        assert!(op.is_multi_key());
        let op = WriteOp::Rename { from: b"x".to_vec(), to: b"y".to_vec(), nx: false };
        assert_eq!(op.keys(), vec![&b"x"[..], b"y"]);
        assert!(WriteOp::Flush.keys().is_empty());
        assert!(!WriteOp::GetDel { key: b"k".to_vec() }.is_multi_key());
        let op = ReadOp::Exists { keys: vec![b"k".to_vec(), b"k".to_vec()] };
        assert_eq!(op.keys().len(), 2);
        assert!(op.is_multi_key());
        assert!(ReadOp::DbSize.keys().is_empty());
    }
}
