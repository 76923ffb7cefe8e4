//! The blocking commands: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
//! BZPOPMIN, BZPOPMAX, BZMPOP and XREAD with BLOCK.
//!
//! Each is a non-blocking op (LMPOP's, LMOVE's, ZMPOP's and their kin
//! write; XREAD reads) and a timeout. The node runs that op at the PRG
//! leader as soon as one of the keys it waits on holds something; until
//! then the leader holds the client and wakes it when a write to one of
//! those keys applies. Inside MULTI a blocking command runs once, as its
//! op, and answers nil if there is nothing, as in Redis.

use serde::{Deserialize, Serialize};

use super::command::Command;
use super::list::{end_of, lmpop_op, End, ListWrite};
use super::long_double::LongDouble;
use super::op::{ReadOp, TxOp, WriteOp};
use super::record::Kind;
use super::reply::Reply;
use super::stream::{ReadFrom, StreamId, StreamRead, StreamWrite};
use super::stream_group::GroupWrite;
use super::zset::{zmpop_op, ZSetWrite};

type Args = Vec<Vec<u8>>;
type Parsed = Result<Command, Reply>;

/// What a blocking command runs once there is something: a write that
/// pops, or a read (XREAD).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BlockOp {
    Write(WriteOp),
    Read(ReadOp),
}

/// A blocking command.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocking {
    /// What runs once there is something to pop or read; its reply is
    /// the command's reply.
    pub op: BlockOp,
    /// How long the client waits, in milliseconds; 0 waits for ever.
    pub timeout_ms: u64,
}

impl Blocking {
    /// The reply when the timeout passes with nothing to pop.
    pub fn timed_out(&self) -> Reply {
        match &self.op {
            BlockOp::Write(WriteOp::List { op: ListWrite::Move { .. }, .. }) => Reply::Nil,
            _ => Reply::NilArray,
        }
    }

    /// The read that tells where an XREAD given `$` reads from, when it
    /// was: each stream's last ID now.
    pub fn last_ids_query(&self) -> Option<ReadOp> {
        match &self.op {
            BlockOp::Read(ReadOp::Stream { key, op: StreamRead::Read { others, from, .. } })
                if from.contains(&ReadFrom::Last) =>
            {
                Some(ReadOp::Stream { key: key.clone(), op: StreamRead::LastIds { others: others.clone() } })
            }
            _ => None,
        }
    }

    /// Read after the IDs `reply` (the answer to [`Self::last_ids_query`])
    /// gives wherever `$` stood, so that the command waits for what comes
    /// after the moment it blocked. False if the reply is not such IDs.
    pub fn fix_last(&mut self, reply: &Reply) -> bool {
        let BlockOp::Read(ReadOp::Stream { op: StreamRead::Read { from, .. }, .. }) = &mut self.op else {
            return false;
        };
        let Reply::Array(ids) = reply else { return false };
        if ids.len() != from.len() {
            return false;
        }
        for (f, id) in from.iter_mut().zip(ids) {
            let Reply::Bulk(text) = id else { return false };
            let Some(id) = StreamId::parse(text) else { return false };
            if *f == ReadFrom::Last {
                *f = ReadFrom::After(id);
            }
        }
        true
    }
}

impl BlockOp {
    /// The keys the op names, for routing.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            BlockOp::Write(op) => op.keys(),
            BlockOp::Read(op) => op.keys(),
        }
    }

    /// The keys it waits on: a write to one of them may serve it. (BLMOVE's
    /// destination is not one.)
    pub fn waits_on(&self) -> Vec<&[u8]> {
        match self {
            BlockOp::Write(WriteOp::List { key, op: ListWrite::Move { .. } }) => vec![key],
            other => other.keys(),
        }
    }

    /// What a key must hold for a blocked client to be served from it: a
    /// write that leaves another type there does not wake it (as in
    /// Redis, where only the command's first look answers WRONGTYPE).
    pub fn kind(&self) -> Option<Kind> {
        match self {
            BlockOp::Write(WriteOp::List { .. }) => Some(Kind::List),
            BlockOp::Write(WriteOp::ZSet { .. }) => Some(Kind::ZSet),
            BlockOp::Read(ReadOp::Stream { .. }) => Some(Kind::Stream),
            _ => None,
        }
    }

    /// The op as it runs inside a transaction, once and without waiting.
    pub fn into_tx(self) -> TxOp {
        match self {
            BlockOp::Write(op) => TxOp::Write(op),
            BlockOp::Read(op) => TxOp::Read(op),
        }
    }

    /// The op to run once the client was woken: XREAD and XREADGROUP
    /// then answer as Redis serves a blocked client (see
    /// [`StreamRead::Read`]).
    pub fn woken(&self) -> BlockOp {
        let mut op = self.clone();
        match &mut op {
            BlockOp::Read(ReadOp::Stream { op: StreamRead::Read { woken, .. }, .. })
            | BlockOp::Write(WriteOp::Stream {
                op: StreamWrite::Group { op: GroupWrite::Read { woken, .. }, .. },
                ..
            }) => *woken = true,
            _ => {}
        }
        op
    }

    /// Whether every write to its keys must run the op, whatever the keys
    /// then hold: XREADGROUP answers an error when its stream or group
    /// goes while it waits.
    pub fn always_looks(&self) -> bool {
        matches!(self, BlockOp::Write(WriteOp::Stream { .. }))
    }
}

/// Whether a blocking command's write found nothing to pop.
pub fn found_nothing(reply: &Reply) -> bool {
    matches!(reply, Reply::Nil | Reply::NilArray)
}

/// A blocking command's timeout in seconds (a float), as milliseconds
/// rounded up, with Redis's errors.
fn timeout(arg: &[u8]) -> Result<u64, Reply> {
    let seconds = match LongDouble::parse(arg) {
        Some(LongDouble::Inf { neg: false }) => return Err(Reply::err("timeout is out of range")),
        Some(LongDouble::Inf { neg: true }) => return Err(Reply::err("timeout is negative")),
        Some(LongDouble::Finite { neg, mant, exp }) => {
            let v = mant as f64 * 2f64.powi(exp.clamp(-4096, 4096) as i32);
            if neg {
                -v
            } else {
                v
            }
        }
        None => return Err(Reply::err("timeout is not a float or out of range")),
    };
    let ms = (seconds * 1000.0).ceil();
    if ms > i64::MAX as f64 {
        return Err(Reply::err("timeout is out of range"));
    }
    if ms < 0.0 {
        return Err(Reply::err("timeout is negative"));
    }
    Ok(ms as u64)
}

fn block(op: WriteOp, timeout_ms: u64) -> Parsed {
    Ok(Command::Block(Blocking { op: BlockOp::Write(op), timeout_ms }))
}

/// `B*POP key [key ...] timeout`: the timeout, the first key and the
/// others.
fn keys_then_timeout(mut a: Args) -> Result<(u64, Vec<u8>, Args), Reply> {
    let timeout_ms = timeout(&a[a.len() - 1])?;
    a.pop();
    let mut others = a.split_off(1);
    let key = others.remove(0);
    Ok((timeout_ms, key, others))
}

fn list_pop(a: Args, end: End) -> Parsed {
    let (timeout_ms, key, others) = keys_then_timeout(a)?;
    block(WriteOp::List { key, op: ListWrite::FirstPop { others, end } }, timeout_ms)
}

/// `BLPOP key [key ...] timeout`.
pub(super) fn blpop(a: Args) -> Parsed {
    list_pop(a, End::Left)
}

/// `BRPOP key [key ...] timeout`.
pub(super) fn brpop(a: Args) -> Parsed {
    list_pop(a, End::Right)
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`.
pub(super) fn blmove(mut a: Args) -> Parsed {
    let (from, to) = (end_of(&a[3])?, end_of(&a[4])?);
    let timeout_ms = timeout(&a[5])?;
    let dest = std::mem::take(&mut a[2]);
    block(WriteOp::List { key: std::mem::take(&mut a[1]), op: ListWrite::Move { dest, from, to } }, timeout_ms)
}

/// `BRPOPLPUSH source destination timeout`.
pub(super) fn brpoplpush(mut a: Args) -> Parsed {
    let timeout_ms = timeout(&a[3])?;
    let dest = std::mem::take(&mut a[2]);
    let op = ListWrite::Move { dest, from: End::Right, to: End::Left };
    block(WriteOp::List { key: std::mem::take(&mut a[1]), op }, timeout_ms)
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`.
pub(super) fn blmpop(a: Args) -> Parsed {
    let timeout_ms = timeout(&a[1])?;
    block(lmpop_op(a, 2)?, timeout_ms)
}

fn zset_pop(a: Args, max: bool) -> Parsed {
    let (timeout_ms, key, others) = keys_then_timeout(a)?;
    block(WriteOp::ZSet { key, op: ZSetWrite::MPop { others, max, count: None } }, timeout_ms)
}

/// `BZPOPMIN key [key ...] timeout`.
pub(super) fn bzpopmin(a: Args) -> Parsed {
    zset_pop(a, false)
}

/// `BZPOPMAX key [key ...] timeout`.
pub(super) fn bzpopmax(a: Args) -> Parsed {
    zset_pop(a, true)
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`.
pub(super) fn bzmpop(a: Args) -> Parsed {
    let timeout_ms = timeout(&a[1])?;
    block(zmpop_op(a, 2)?, timeout_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::parse;

    fn run(s: &str) -> Result<Command, Reply> {
        parse(s.split(' ').map(|a| a.as_bytes().to_vec()).collect())
    }

    fn timeout_of(s: &str) -> Result<u64, Reply> {
        match run(s)? {
            Command::Block(b) => Ok(b.timeout_ms),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn timeouts_are_seconds_rounded_up_to_milliseconds() {
        assert_eq!(timeout_of("BLPOP k 0"), Ok(0));
        assert_eq!(timeout_of("BLPOP k 1.5"), Ok(1500));
        assert_eq!(timeout_of("BLPOP k 0.0001"), Ok(1));
        assert_eq!(timeout_of("BRPOP a b 2"), Ok(2000));
        assert_eq!(timeout_of("BLMOVE a b LEFT RIGHT 0.25"), Ok(250));
        assert_eq!(timeout_of("BZMPOP 3 1 z MIN"), Ok(3000));
        assert_eq!(timeout_of("BLPOP k -0"), Ok(0));
    }

    #[test]
    fn bad_timeouts_get_redis_errors() {
        assert_eq!(timeout_of("BLPOP k -1"), Err(Reply::err("timeout is negative")));
        assert_eq!(timeout_of("BLPOP k abc"), Err(Reply::err("timeout is not a float or out of range")));
        assert_eq!(timeout_of("BLPOP k inf"), Err(Reply::err("timeout is out of range")));
        assert_eq!(timeout_of("BZPOPMIN k 1e300"), Err(Reply::err("timeout is out of range")));
        assert_eq!(timeout_of("BLMPOP x 1 k LEFT"), Err(Reply::err("timeout is not a float or out of range")));
        // The direction is checked before the timeout, as Redis does.
        assert_eq!(timeout_of("BLMOVE a b UP LEFT x"), Err(Reply::syntax()));
        assert_eq!(timeout_of("BLMPOP 1 0 k LEFT"), Err(Reply::err("numkeys should be greater than 0")));
        assert_eq!(timeout_of("BZMPOP 1 1 k MIN COUNT 0"), Err(Reply::err("count should be greater than 0")));
    }

    #[test]
    fn each_command_blocks_on_the_keys_it_pops_from() {
        let keys = |s: &str| match run(s).unwrap() {
            Command::Block(b) => b.op.waits_on().iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect(),
            other => panic!("{other:?}"),
        };
        let v: Vec<String> = keys("BLPOP a b c 0");
        assert_eq!(v, ["a", "b", "c"]);
        assert_eq!(keys("BLMOVE src dst LEFT LEFT 0"), ["src"]);
        assert_eq!(keys("BRPOPLPUSH src dst 0"), ["src"]);
        assert_eq!(keys("BZMPOP 0 2 a b MAX COUNT 3"), ["a", "b"]);
        assert_eq!(keys("BZPOPMAX z 0"), ["z"]);
    }

    #[test]
    fn nothing_popped_is_nil_of_the_command_s_shape() {
        let b = |s: &str| match run(s).unwrap() {
            Command::Block(b) => b,
            other => panic!("{other:?}"),
        };
        assert_eq!(b("BLPOP a 0").timed_out(), Reply::NilArray);
        assert_eq!(b("BLMOVE a b LEFT LEFT 0").timed_out(), Reply::Nil);
        assert_eq!(b("BRPOPLPUSH a b 0").timed_out(), Reply::Nil);
        assert_eq!(b("BZMPOP 0 1 a MIN").timed_out(), Reply::NilArray);
        assert!(found_nothing(&Reply::Nil) && found_nothing(&Reply::NilArray));
        assert!(!found_nothing(&Reply::Array(vec![])));
    }
}
