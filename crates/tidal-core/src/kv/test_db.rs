//! A store driven through `parse` the way a client drives tidal, for the
//! engine's tests: replies to compare with Redis 7.0's.

use super::{apply, exec, parse, read, Command, KeyspaceCmd, MemStore, ReadOp, Reply, WriteOp};

pub const T0: u64 = 1_700_000_000_000;

pub struct Db {
    pub store: MemStore,
    pub now: u64,
}

impl Db {
    pub fn new() -> Db {
        Db { store: MemStore::new(), now: T0 }
    }

    pub fn run_bytes(&mut self, args: Vec<Vec<u8>>) -> Reply {
        match parse(args) {
            Err(reply) => reply,
            Ok(Command::Write(op)) => apply(&op, self.now, &mut self.store).unwrap(),
            // The clock of these tests stands still: a blocking command
            // answers as its timeout passing would.
            Ok(Command::Block(b)) => {
                match exec(&[b.op.clone().into_tx()], self.now, &mut self.store).unwrap().remove(0) {
                    r if crate::kv::found_nothing(&r) => b.timed_out(),
                    r => r,
                }
            }
            Ok(Command::Read(op)) => read(&op, self.now, &self.store).unwrap(),
            Ok(Command::Keyspace(KeyspaceCmd::DbSize)) => read(&ReadOp::DbSize, self.now, &self.store).unwrap(),
            Ok(Command::Keyspace(KeyspaceCmd::Keys(pattern))) => {
                read(&ReadOp::Keys { pattern }, self.now, &self.store).unwrap()
            }
            Ok(Command::Keyspace(KeyspaceCmd::FlushDb { .. } | KeyspaceCmd::FlushAll { .. })) => {
                apply(&WriteOp::Flush, self.now, &mut self.store).unwrap()
            }
            Ok(other) => panic!("not a data command: {other:?}"),
        }
    }

    pub fn run(&mut self, args: &[&str]) -> Reply {
        self.run_bytes(args.iter().map(|a| a.as_bytes().to_vec()).collect())
    }

    pub fn ok(&mut self, args: &[&str]) {
        assert_eq!(self.run(args), Reply::Ok, "{args:?}");
    }

    pub fn stored(&self) -> usize {
        self.store.entries().count()
    }
}

pub fn bulk(s: &str) -> Reply {
    Reply::bulk(s)
}

pub fn int(n: i64) -> Reply {
    Reply::Int(n)
}

pub fn err(s: &str) -> Reply {
    Reply::Error(s.to_string())
}

/// A reply as a RESP2 client sees it: scores as bulk strings, pairs
/// flattened.
pub fn resp2(r: Reply) -> Reply {
    match r {
        Reply::Score(s) => Reply::bulk(super::format_score(s)),
        Reply::Pairs(pairs) => Reply::Array(pairs.into_iter().flat_map(|(a, b)| [resp2(a), resp2(b)]).collect()),
        Reply::Keyed(pairs) => {
            Reply::Array(pairs.into_iter().map(|(a, b)| Reply::Array(vec![resp2(a), resp2(b)])).collect())
        }
        Reply::Array(items) => Reply::Array(items.into_iter().map(resp2).collect()),
        other => other,
    }
}

impl Db {
    /// [`Db::run`], as a RESP2 client sees the reply.
    pub fn run2(&mut self, args: &[&str]) -> Reply {
        resp2(self.run(args))
    }
}
