//! Redis's count of changes (`server.dirty`) for one applied write: what
//! INFO reports as `rdb_changes_since_last_save`.
//!
//! Redis adds one for most writes that changed the keyspace, and more for
//! some that change several keys or elements at once (DEL of three keys,
//! MSET of three pairs, an LPUSH of three elements: three). The engine
//! tells whether an op stored or deleted anything; this module gives the
//! count Redis gives for the ops whose count is not one, where the op and
//! its reply tell it. SETBIT, BITFIELD and ZADD count their own (the
//! first two compare the bits before and after).

use super::hash::HashWrite;
use super::list::ListWrite;
use super::op::WriteOp;
use super::reply::Reply;
use super::set::SetWrite;
use super::zset::ZSetWrite;

/// The changes `op`, answered `reply`, made: `None` when the op counted
/// them itself; `wrote` says whether it stored or deleted any row.
pub(super) fn changes(op: &WriteOp, reply: &Reply, wrote: bool) -> Option<u64> {
    let int = |r: &Reply| match r {
        Reply::Int(n) => (*n).max(0) as u64,
        _ => 0,
    };
    let n = match op {
        WriteOp::SetBit { .. } | WriteOp::BitField { .. } | WriteOp::ZSet { op: ZSetWrite::Add { .. }, .. } => {
            return None
        }
        _ if !wrote => 0,
        // DEL counts the keys it removed; expiries count none, in Redis
        // too.
        WriteOp::Del { .. } => int(reply),
        WriteOp::Reap { .. } => 0,
        WriteOp::MSet { pairs } => pairs.len() as u64,
        WriteOp::MSetNx { pairs } if *reply == Reply::Int(1) => pairs.len() as u64,
        WriteOp::MSetNx { .. } => 0,
        // HSET counts every pair it was given, changed or not.
        WriteOp::Hash { op: HashWrite::Set { pairs, .. }, .. } => pairs.len() as u64,
        // LPUSHX and RPUSHX of a missing key push nothing (and answer 0).
        WriteOp::List { op: ListWrite::Push { values, .. }, .. } if int(reply) > 0 => values.len() as u64,
        WriteOp::List { op: ListWrite::Push { .. }, .. } => 0,
        WriteOp::Hash { op: HashWrite::Del { .. }, .. }
        | WriteOp::Members { op: SetWrite::Add { .. } | SetWrite::Rem { .. }, .. }
        | WriteOp::ZSet { op: ZSetWrite::Rem { .. }, .. } => int(reply),
        _ => 1,
    };
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::super::test_db::Db;
    use super::super::{apply, parse, Command, Reply, TxOp, WriteOp};

    fn words(cmd: &str) -> Vec<&str> {
        cmd.split(' ').collect()
    }

    fn changes(db: &mut Db, cmds: &[&str]) -> u64 {
        use super::super::KvStore;
        let before = db.store.changes();
        for c in cmds {
            db.run(&words(c));
        }
        db.store.changes() - before
    }

    /// The changes each command counts, as Redis 7.0 counts them.
    #[test]
    fn counts_as_redis_counts() {
        let mut db = Db::new();
        let step = |db: &mut Db, cmd: &str| changes(db, &[cmd]);
        assert_eq!(step(&mut db, "SET a 1"), 1);
        assert_eq!(step(&mut db, "SET a 1 NX"), 0);
        assert_eq!(step(&mut db, "MSET b 1 c 2 d 3"), 3);
        assert_eq!(step(&mut db, "DEL a b zz"), 2);
        assert_eq!(step(&mut db, "DEL zz"), 0);
        assert_eq!(step(&mut db, "INCR c"), 1);
        assert_eq!(step(&mut db, "GET c"), 0);
        assert_eq!(step(&mut db, "RPUSH l x y z"), 3);
        assert_eq!(step(&mut db, "LPUSHX nolist x"), 0);
        assert_eq!(step(&mut db, "SADD s a b c"), 3);
        assert_eq!(step(&mut db, "SADD s a b"), 0);
        assert_eq!(step(&mut db, "SREM s a zz"), 1);
        assert_eq!(step(&mut db, "HSET h f 1 g 2"), 2);
        assert_eq!(step(&mut db, "HSET h f 1"), 1);
        assert_eq!(step(&mut db, "HDEL h f zz"), 1);
        assert_eq!(step(&mut db, "ZADD z 1 a"), 1);
        assert_eq!(step(&mut db, "ZADD z 1 a 2 b 3 c"), 2);
        assert_eq!(step(&mut db, "ZADD z NX 5 a 4 d"), 1);
        assert_eq!(step(&mut db, "ZADD z 1 a"), 0);
        assert_eq!(step(&mut db, "ZREM z a zz"), 1);
        assert_eq!(step(&mut db, "EXPIRE c 100"), 1);
        assert_eq!(step(&mut db, "EXPIRE zz 100"), 0);
        assert_eq!(step(&mut db, "INCR l"), 0, "a WRONGTYPE error changes nothing");
        // A key found expired is deleted first, which counts nothing.
        assert_eq!(step(&mut db, "SET e 1 PX 10"), 1);
        assert_eq!(step(&mut db, "MSET f 1"), 1);
        db.now += 20;
        assert_eq!(step(&mut db, "EXPIRE e 100"), 0);
        assert_eq!(step(&mut db, "SET e2 1 PX 10"), 1);
        assert_eq!(step(&mut db, "RPUSH e3 a"), 1);
        assert_eq!(step(&mut db, "PEXPIRE e3 10"), 1);
        db.now += 20;
        assert_eq!(step(&mut db, "RPUSHX e3 a b"), 0);
        assert_eq!(step(&mut db, "MSETNX e2 1 f 2"), 0);
        assert_eq!(step(&mut db, "MSETNX e2 1 g 2"), 2);
        // RESTORE counts one, whatever it holds.
        assert_eq!(step(&mut db, "ZADD big 1 a 2 b 3 c"), 3);
        let Reply::Bulk(payload) = db.run(&["DUMP", "big"]) else { panic!("DUMP") };
        {
            use super::super::KvStore;
            let before = db.store.changes();
            let restore = vec![b"RESTORE".to_vec(), b"copy".to_vec(), b"0".to_vec(), payload];
            assert_eq!(db.run_bytes(restore), Reply::Ok);
            assert_eq!(db.store.changes() - before, 1);
        }
        // Each command of a transaction counts its own.
        let ops = ["SET t 1", "DEL t d", "GET t"]
            .iter()
            .map(|c| match parse(words(c).iter().map(|w| w.as_bytes().to_vec()).collect()) {
                Ok(Command::Write(w)) => TxOp::Write(w),
                Ok(Command::Read(r)) => TxOp::Read(r),
                other => panic!("{other:?}"),
            })
            .collect();
        use super::super::KvStore;
        let before = db.store.changes();
        apply(&WriteOp::Exec { watch: None, ops }, db.now, &mut db.store).unwrap();
        assert_eq!(db.store.changes() - before, 3);
    }

    /// Redis's `SETBIT/BITFIELD only increase dirty when the value changed`.
    #[test]
    fn setbit_and_bitfield_count_only_what_changed() {
        let mut db = Db::new();
        let mut step = |cmds: &[&str]| changes(&mut db, cmds);
        // A new key always counts.
        assert_eq!(step(&["SETBIT foo 0 0", "BITFIELD foo2 SET i5 0 0"]), 2);
        // No change.
        assert_eq!(step(&["SETBIT foo 0 0", "BITFIELD foo2 SET i5 0 0"]), 0);
        // A change and a no change, each way.
        let mixed = [
            "SETBIT foo 0 1",
            "SETBIT foo 0 1",
            "SETBIT foo 0 0",
            "SETBIT foo 0 0",
            "BITFIELD foo2 SET i5 0 1",
            "BITFIELD foo2 SET i5 0 1",
            "BITFIELD foo2 SET i5 0 0",
            "BITFIELD foo2 SET i5 0 0",
        ];
        assert_eq!(step(&mixed), 4);
        // INCRBY always changes.
        assert_eq!(step(&["BITFIELD foo3 INCRBY i5 0 1", "BITFIELD foo3 INCRBY i5 0 1"]), 2);
        // Only the length changes.
        assert_eq!(step(&["SETBIT foo 90 0", "BITFIELD foo2 SET i5 90 0"]), 2);
        // Each subcommand that changes a value counts; a failed overflow does not.
        assert_eq!(step(&["BITFIELD foo2 SET u4 0 15 SET u4 4 15 SET u4 4 15 GET u4 0"]), 2);
        assert_eq!(step(&["BITFIELD foo2 OVERFLOW FAIL INCRBY u4 0 1"]), 0);
    }

    /// A SETBIT or BITFIELD that changes nothing writes nothing: WATCH
    /// holds and no keyspace event is due, as in Redis.
    #[test]
    fn unchanged_bits_are_not_written() {
        use super::super::KvStore;
        let mut db = Db::new();
        db.run(&words("SETBIT foo 3 1"));
        db.run(&words("BITFIELD bar SET u8 0 200"));
        let writes = db.store.writes();
        assert_eq!(db.run(&words("SETBIT foo 3 1")), Reply::Int(1));
        db.run(&words("SETBIT foo 2 0"));
        db.run(&words("BITFIELD bar SET u8 0 200 GET u4 0"));
        assert_eq!(db.store.writes(), writes);
        db.run(&words("SETBIT foo 2 1"));
        assert_eq!(db.store.writes(), writes + 1);
    }
}
