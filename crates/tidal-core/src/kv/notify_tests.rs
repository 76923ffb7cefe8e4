//! The events writes cause, as Redis 7.0 names them (its
//! `notifyKeyspaceEvent` calls), through the store the engine's tests use.

use super::*;
use crate::kv::test_db::{Db, T0};
use crate::kv::{parse, BlockOp, Blocking, Command};

/// Every class, published both ways, new keys included.
const EVERYTHING: u32 = KEYSPACE | KEYEVENT | ALL | NEW;

/// The events of one command: `event key` each.
fn events(db: &mut Db, args: &[&str], flags: u32) -> Vec<String> {
    let op = match parse(args.iter().map(|a| a.as_bytes().to_vec()).collect()).unwrap() {
        Command::Write(op) => op,
        Command::Block(Blocking { op: BlockOp::Write(op), .. }) => op,
        other => panic!("{other:?}"),
    };
    let mut out = Vec::new();
    apply_noting(&op, db.now, &mut db.store, flags, &mut out).unwrap();
    out.into_iter().map(|e| format!("{} {}", e.name, String::from_utf8_lossy(&e.key))).collect()
}

fn all(db: &mut Db, args: &[&str]) -> Vec<String> {
    events(db, args, EVERYTHING)
}

#[test]
fn flags_read_and_show_as_redis_does() {
    assert_eq!(parse_flags(b""), Some(0));
    assert_eq!(parse_flags(b"KEA").map(flags_text), Some("AKE".into()));
    assert_eq!(parse_flags(b"Kgl$").map(flags_text), Some("g$lK".into()));
    assert_eq!(parse_flags(b"Exn").map(flags_text), Some("xnE".into()));
    assert_eq!(parse_flags(b"KEAmn").map(flags_text), Some("AnKEm".into()));
    assert_eq!(parse_flags(b"KEQ"), None);
    assert!(wanted(KEYSPACE | LIST, LIST));
    assert!(!wanted(LIST, LIST), "neither keyspace nor keyevent: nothing is published");
    assert!(!wanted(KEYEVENT | LIST, SET));
}

#[test]
fn strings_and_generic_commands() {
    let mut db = Db::new();
    assert_eq!(all(&mut db, &["SET", "a", "1"]), ["new a", "set a"]);
    assert_eq!(all(&mut db, &["SET", "a", "2", "EX", "10"]), ["set a", "expire a"]);
    assert_eq!(all(&mut db, &["SET", "a", "3", "NX"]), Vec::<String>::new(), "not set");
    assert_eq!(all(&mut db, &["INCR", "n"]), ["new n", "incrby n"]);
    assert_eq!(all(&mut db, &["INCRBYFLOAT", "n", "1.5"]), ["incrbyfloat n"]);
    assert_eq!(all(&mut db, &["APPEND", "a", "x"]), ["append a"]);
    assert_eq!(all(&mut db, &["SETRANGE", "a", "0", "y"]), ["setrange a"]);
    assert_eq!(all(&mut db, &["SETBIT", "b", "3", "1"]), ["new b", "setbit b"]);
    assert_eq!(all(&mut db, &["MSET", "{m}1", "x", "{m}2", "y"]), ["new {m}1", "set {m}1", "new {m}2", "set {m}2"]);
    assert_eq!(all(&mut db, &["MSETNX", "{m}1", "x", "{m}3", "y"]), Vec::<String>::new());
    assert_eq!(all(&mut db, &["EXPIRE", "a", "100"]), ["expire a"]);
    assert_eq!(all(&mut db, &["EXPIRE", "a", "100", "NX"]), Vec::<String>::new(), "the condition failed");
    assert_eq!(all(&mut db, &["PERSIST", "a"]), ["persist a"]);
    assert_eq!(all(&mut db, &["PERSIST", "a"]), Vec::<String>::new());
    assert_eq!(all(&mut db, &["RENAME", "{m}1", "{m}9"]), ["new {m}9", "rename_from {m}1", "rename_to {m}9"]);
    // Onto a key that exists: Redis deletes it and adds the new one.
    db.run(&["SET", "{m}1", "x"]);
    assert_eq!(all(&mut db, &["RENAME", "{m}9", "{m}1"]), ["new {m}1", "rename_from {m}9", "rename_to {m}1"]);
    assert_eq!(all(&mut db, &["RENAME", "{m}1", "{m}9"]), ["new {m}9", "rename_from {m}1", "rename_to {m}9"]);
    assert_eq!(all(&mut db, &["COPY", "{m}9", "{m}8"]), ["new {m}8", "copy_to {m}8"]);
    assert_eq!(all(&mut db, &["DEL", "{m}9", "{m}nothing", "{m}8"]), ["del {m}9", "del {m}8"]);
    assert_eq!(all(&mut db, &["GETDEL", "{m}2"]), ["del {m}2"]);
    // An expiry in the past deletes: `del`, not `expire`.
    assert_eq!(all(&mut db, &["PEXPIREAT", "n", "1"]), ["del n"]);
    assert_eq!(
        all(&mut db, &["BITOP", "OR", "{m}d", "{m}none"]),
        Vec::<String>::new(),
        "nothing stored, nothing deleted"
    );
}

#[test]
fn collections_name_their_commands_and_delete_when_emptied() {
    let mut db = Db::new();
    assert_eq!(all(&mut db, &["LPUSH", "l", "a", "b"]), ["new l", "lpush l"]);
    assert_eq!(all(&mut db, &["RPUSH", "l", "c"]), ["rpush l"]);
    assert_eq!(all(&mut db, &["LSET", "l", "0", "z"]), ["lset l"]);
    assert_eq!(all(&mut db, &["LINSERT", "l", "BEFORE", "nope", "x"]), Vec::<String>::new());
    assert_eq!(all(&mut db, &["LREM", "l", "0", "z"]), ["lrem l"]);
    assert_eq!(all(&mut db, &["LTRIM", "l", "0", "0"]), ["ltrim l"]);
    assert_eq!(all(&mut db, &["RPOP", "l"]), ["rpop l", "del l"]);
    db.run(&["RPUSH", "{q}a", "1"]);
    assert_eq!(
        all(&mut db, &["LMOVE", "{q}a", "{q}b", "RIGHT", "LEFT"]),
        ["new {q}b", "lpush {q}b", "rpop {q}a", "del {q}a"],
        "Redis's order: the push onto the destination, then the pop"
    );
    db.run(&["RPUSH", "{q}b", "2"]);
    assert_eq!(all(&mut db, &["RPOPLPUSH", "{q}b", "{q}b"]), ["lpush {q}b", "rpop {q}b"]);
    assert_eq!(all(&mut db, &["BLPOP", "{q}b", "0"]), ["lpop {q}b"]);
    assert_eq!(all(&mut db, &["BLPOP", "{q}b", "0"]), ["lpop {q}b", "del {q}b"]);

    assert_eq!(all(&mut db, &["HSET", "h", "f", "1"]), ["new h", "hset h"]);
    assert_eq!(all(&mut db, &["HSETNX", "h", "f", "2"]), Vec::<String>::new());
    assert_eq!(all(&mut db, &["HINCRBY", "h", "f", "2"]), ["hincrby h"]);
    assert_eq!(all(&mut db, &["HINCRBYFLOAT", "h", "f", "2"]), ["hincrbyfloat h"]);
    assert_eq!(all(&mut db, &["HDEL", "h", "f"]), ["hdel h", "del h"]);

    assert_eq!(all(&mut db, &["SADD", "{s}a", "x", "y"]), ["new {s}a", "sadd {s}a"]);
    assert_eq!(all(&mut db, &["SADD", "{s}a", "x"]), Vec::<String>::new());
    assert_eq!(all(&mut db, &["SREM", "{s}a", "x"]), ["srem {s}a"]);
    db.run(&["SADD", "{s}b", "y"]);
    // SMOVE of a member the destination holds: the source only.
    assert_eq!(all(&mut db, &["SMOVE", "{s}a", "{s}b", "y"]), ["srem {s}a", "del {s}a"]);
    assert_eq!(all(&mut db, &["SINTERSTORE", "{s}c", "{s}b", "{s}b"]), ["new {s}c", "sinterstore {s}c"]);
    assert_eq!(all(&mut db, &["SDIFFSTORE", "{s}c", "{s}b", "{s}b"]), ["del {s}c"]);
    assert_eq!(all(&mut db, &["SPOP", "{s}b"]), ["spop {s}b", "del {s}b"]);

    assert_eq!(all(&mut db, &["ZADD", "{z}a", "1", "x", "2", "y"]), ["new {z}a", "zadd {z}a"]);
    assert_eq!(all(&mut db, &["ZADD", "{z}a", "1", "x"]), Vec::<String>::new(), "no change");
    assert_eq!(all(&mut db, &["ZADD", "{z}a", "INCR", "1", "x"]), ["zincr {z}a"]);
    assert_eq!(all(&mut db, &["ZINCRBY", "{z}a", "1", "x"]), ["zincr {z}a"]);
    assert_eq!(all(&mut db, &["ZUNIONSTORE", "{z}b", "1", "{z}a"]), ["new {z}b", "zunionstore {z}b"]);
    assert_eq!(all(&mut db, &["ZREMRANGEBYSCORE", "{z}b", "-inf", "2"]), ["zremrangebyscore {z}b"]);
    assert_eq!(all(&mut db, &["ZREMRANGEBYRANK", "{z}b", "0", "-1"]), ["zremrangebyrank {z}b", "del {z}b"]);
    assert_eq!(all(&mut db, &["ZREM", "{z}a", "y"]), ["zrem {z}a"]);
    assert_eq!(all(&mut db, &["ZPOPMAX", "{z}a"]), ["zpopmax {z}a", "del {z}a"]);
}

#[test]
fn flags_choose_classes_expiry_and_transactions_note_each_write() {
    let mut db = Db::new();
    // Lists only, keyevent only.
    assert_eq!(events(&mut db, &["SET", "k", "v"], KEYEVENT | LIST), Vec::<String>::new());
    assert_eq!(events(&mut db, &["LPUSH", "l", "v"], KEYEVENT | LIST), ["lpush l"]);
    assert_eq!(events(&mut db, &["LPUSH", "l", "v"], LIST), Vec::<String>::new(), "no channel chosen");
    assert_eq!(events(&mut db, &["SET", "k2", "v"], KEYSPACE | NEW), ["new k2"]);

    // A key stored but expired: a command that finds it announces
    // `expired`, then nothing of its own when it changes nothing.
    db.run(&["SET", "old", "v", "PX", "10"]);
    db.run(&["SET", "old2", "v", "PX", "10"]);
    db.now = T0 + 20;
    assert_eq!(events(&mut db, &["DEL", "old"], EVERYTHING), ["expired old"]);
    assert_eq!(events(&mut db, &["SET", "old2", "w"], EVERYTHING), ["expired old2", "new old2", "set old2"]);
    assert_eq!(events(&mut db, &["PERSIST", "never"], EVERYTHING), Vec::<String>::new());
    db.now = T0;

    // The reaper's deletion of an expired key is `expired`.
    db.run(&["SET", "gone", "v", "PX", "10"]);
    db.now = T0 + 20;
    let mut out = Vec::new();
    let reap = WriteOp::Reap { keys: vec![b"gone".to_vec()] };
    apply_noting(&reap, db.now, &mut db.store, KEYEVENT | EXPIRED, &mut out).unwrap();
    assert_eq!(out, vec![Event { class: EXPIRED, name: "expired".into(), key: b"gone".to_vec() }]);

    // EXEC: each write's own events, in order; a failed watch, none.
    let exec = |watch| WriteOp::Exec {
        watch,
        ops: vec![
            TxOp::Write(WriteOp::Set {
                key: b"{t}x".to_vec(),
                value: b"1".to_vec(),
                expiry: crate::kv::Expiry::None,
                cond: crate::kv::SetCond::None,
                get: false,
            }),
            TxOp::Write(WriteOp::Del { keys: vec![b"{t}x".to_vec()] }),
        ],
    };
    let mut out = Vec::new();
    let reply = apply_noting(&exec(None), db.now, &mut db.store, KEYEVENT | ALL, &mut out).unwrap();
    assert_eq!(reply, Reply::Array(vec![Reply::Ok, Reply::Int(1)]));
    let names: Vec<&str> = out.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["set", "del"]);
    let stale = crate::kv::Watch { prg: "p".into(), keys: vec![(b"{t}x".to_vec(), 99)] };
    let mut out = Vec::new();
    let reply = apply_noting(&exec(Some(stale)), db.now, &mut db.store, KEYEVENT | ALL, &mut out).unwrap();
    assert_eq!((reply, out), (Reply::NilArray, Vec::new()));
}

/// A SETBIT or BITFIELD that changes no bit announces nothing (Redis
/// signals only a change), and changes are counted with events on too.
#[test]
fn unchanged_bits_announce_nothing_and_changes_count_alike() {
    let mut db = Db::new();
    assert_eq!(all(&mut db, &["SETBIT", "b", "3", "1"]), ["new b", "setbit b"]);
    assert!(all(&mut db, &["SETBIT", "b", "3", "1"]).is_empty());
    assert!(all(&mut db, &["BITFIELD", "b", "SET", "u1", "3", "1"]).is_empty());
    assert_eq!(all(&mut db, &["BITFIELD", "b", "SET", "u1", "3", "0"]), ["setbit b"]);
    assert_eq!(all(&mut db, &["DEL", "b", "nope"]), ["del b"]);
    assert_eq!(db.store.changes(), 3);
}
