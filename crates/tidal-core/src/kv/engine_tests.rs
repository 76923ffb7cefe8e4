//! Engine behaviour, driven through `parse` the way a client would, with
//! expected replies taken from Redis 7.0.

use super::*;
use proptest::prelude::*;

use crate::kv::test_db::*;
use crate::kv::{parse, Command, MemStore};

#[test]
fn set_and_get() {
    let mut db = Db::new();
    assert_eq!(db.run(&["GET", "k"]), Reply::Nil);
    db.ok(&["SET", "k", "v"]);
    assert_eq!(db.run(&["GET", "k"]), bulk("v"));
    assert_eq!(db.run(&["STRLEN", "k"]), int(1));
    assert_eq!(db.run(&["STRLEN", "nope"]), int(0));
    assert_eq!(db.run(&["TYPE", "k"]), Reply::simple("string"));
    assert_eq!(db.run(&["TYPE", "nope"]), Reply::simple("none"));
}

#[test]
fn set_conditions_and_get_flag() {
    let mut db = Db::new();
    db.ok(&["SET", "k", "v1"]);
    assert_eq!(db.run(&["SET", "k", "v2", "NX"]), Reply::Nil);
    assert_eq!(db.run(&["SET", "k2", "v", "XX"]), Reply::Nil);
    assert_eq!(db.run(&["GET", "k2"]), Reply::Nil);
    db.ok(&["SET", "k", "v2", "xx"]);
    assert_eq!(db.run(&["SET", "k", "v3", "GET"]), bulk("v2"));
    assert_eq!(db.run(&["SET", "new", "x", "GET"]), Reply::Nil);
    assert_eq!(db.run(&["GET", "new"]), bulk("x"));
    // NX + GET: old value back, nothing written.
    assert_eq!(db.run(&["SET", "k", "v4", "NX", "GET"]), bulk("v3"));
    assert_eq!(db.run(&["GET", "k"]), bulk("v3"));
    assert_eq!(db.run(&["SET", "m", "v", "NX", "GET"]), Reply::Nil);
    assert_eq!(db.run(&["GET", "m"]), bulk("v"));
    assert_eq!(db.run(&["SET", "absent", "v", "XX", "GET"]), Reply::Nil);
    assert_eq!(db.run(&["EXISTS", "absent"]), int(0));
    db.ok(&["SET", "k", "v", "XX", "xx"]);
    db.ok(&["SET", "fresh", "v", "NX", "nx"]);
}

#[test]
fn set_option_errors() {
    let mut db = Db::new();
    let syntax = Reply::syntax();
    assert_eq!(db.run(&["SET", "k", "v", "NX", "XX"]), syntax);
    assert_eq!(db.run(&["SET", "k", "v", "XX", "NX"]), syntax);
    assert_eq!(db.run(&["SET", "k", "v", "EX", "10", "PX", "100"]), syntax);
    assert_eq!(db.run(&["SET", "k", "v", "KEEPTTL", "EX", "10"]), syntax);
    assert_eq!(db.run(&["SET", "k", "v", "EX", "10", "KEEPTTL"]), syntax);
    assert_eq!(db.run(&["SET", "k", "v", "EX"]), syntax);
    assert_eq!(db.run(&["SET", "k", "v", "PERSIST"]), syntax);
    assert_eq!(db.run(&["SET", "k", "v", "FOO"]), syntax);
    assert_eq!(db.run(&["SET", "k", "v", "EX", "0"]), err("ERR invalid expire time in 'set' command"));
    assert_eq!(db.run(&["SET", "k", "v", "PX", "-5"]), err("ERR invalid expire time in 'set' command"));
    assert_eq!(db.run(&["SET", "k", "v", "EXAT", "0"]), err("ERR invalid expire time in 'set' command"));
    assert_eq!(
        db.run(&["SET", "k", "v", "EX", "9223372036854775807"]),
        err("ERR invalid expire time in 'set' command")
    );
    assert_eq!(
        db.run(&["SET", "k", "v", "PX", "9223372036854775807"]),
        err("ERR invalid expire time in 'set' command"),
        "now + ms overflows at apply"
    );
    assert_eq!(db.run(&["SET", "k", "v", "EX", "abc"]), Reply::not_integer());
    assert_eq!(db.run(&["SET", "k", "v", "EX", "010"]), Reply::not_integer());
    assert_eq!(db.stored(), 0, "no error path wrote anything");
    // The same expiry option twice is allowed; the last one wins.
    db.ok(&["SET", "k", "v", "EX", "10", "EX", "20"]);
    assert_eq!(db.run(&["TTL", "k"]), int(20));
}

#[test]
fn set_expiry_forms() {
    let mut db = Db::new();
    db.ok(&["SET", "k", "v", "EX", "10"]);
    assert_eq!(db.run(&["PTTL", "k"]), int(10_000));
    db.ok(&["SET", "k", "v2", "KEEPTTL"]);
    assert_eq!(db.run(&["PTTL", "k"]), int(10_000));
    db.ok(&["SET", "k", "v3"]);
    assert_eq!(db.run(&["TTL", "k"]), int(-1), "plain SET clears the TTL");
    db.ok(&["SET", "k", "v", "PX", "1500"]);
    assert_eq!(db.run(&["TTL", "k"]), int(2), "TTL rounds to the nearest second");
    let at = (T0 + 5000).to_string();
    db.ok(&["SET", "k", "v", "PXAT", &at]);
    assert_eq!(db.run(&["PEXPIRETIME", "k"]), int((T0 + 5000) as i64));
    assert_eq!(db.run(&["EXPIRETIME", "k"]), int(((T0 + 5000) / 1000) as i64));
    let secs = (T0 / 1000 + 100).to_string();
    db.ok(&["SET", "k", "v", "EXAT", &secs]);
    assert_eq!(db.run(&["EXPIRETIME", "k"]), int((T0 / 1000 + 100) as i64));
    db.ok(&["SET", "k", "v", "PXAT", "1"]);
    assert_eq!(db.run(&["GET", "k"]), Reply::Nil, "a deadline in the past leaves no key");
    assert_eq!(db.stored(), 0);
}

#[test]
fn keys_expire_after_their_deadline_millisecond() {
    let mut db = Db::new();
    db.ok(&["SET", "k", "v", "PX", "100"]);
    db.now = T0 + 100;
    assert_eq!(db.run(&["GET", "k"]), bulk("v"));
    assert_eq!(db.run(&["PTTL", "k"]), int(0));
    db.now = T0 + 101;
    assert_eq!(db.run(&["GET", "k"]), Reply::Nil);
    assert_eq!(db.run(&["TTL", "k"]), int(-2));
    assert_eq!(db.run(&["EXISTS", "k"]), int(0));
    assert_eq!(db.run(&["DBSIZE"]), int(1), "counted until reaped, as Redis counts it until expired");
    assert_eq!(db.stored(), 1, "reads never delete");
    assert_eq!(db.run(&["SET", "k", "w", "NX"]), Reply::Ok, "an expired key is absent for NX");
    assert_eq!(db.run(&["TTL", "k"]), int(-1));
}

#[test]
fn a_reap_deletes_only_keys_expired_when_it_applies() {
    let mut db = Db::new();
    db.ok(&["SET", "gone", "v", "PX", "100"]);
    db.ok(&["SET", "later", "v", "PX", "500"]);
    db.ok(&["SET", "kept", "v"]);
    assert_eq!(db.run(&["HSET", "h", "a", "1", "b", "2"]), int(2));
    assert_eq!(db.run(&["PEXPIRE", "h", "100"]), int(1));
    db.now += 200;
    assert_eq!(db.run(&["DBSIZE"]), int(4));
    let keys = ["gone", "later", "kept", "h", "absent"].map(|k| k.as_bytes().to_vec()).to_vec();
    let reap = WriteOp::Reap { keys };
    assert_eq!(apply(&reap, db.now, &mut db.store).unwrap(), int(2));
    assert_eq!(db.run(&["DBSIZE"]), int(2));
    assert_eq!(db.stored(), 2, "the hash's element rows went with it");
    assert_eq!(db.run(&["GET", "later"]), bulk("v"));
    // A key written again since the reaper found it expired stays.
    db.ok(&["SET", "gone", "back"]);
    assert_eq!(apply(&reap, db.now, &mut db.store).unwrap(), int(0));
    assert_eq!(db.run(&["GET", "gone"]), bulk("back"));
}

#[test]
fn setex_psetex_setnx_getset() {
    let mut db = Db::new();
    assert_eq!(db.run(&["SETEX", "k", "0", "v"]), err("ERR invalid expire time in 'setex' command"));
    assert_eq!(db.run(&["PSETEX", "k", "-1", "v"]), err("ERR invalid expire time in 'psetex' command"));
    assert_eq!(db.run(&["SETEX", "k", "x", "v"]), Reply::not_integer());
    db.ok(&["SETEX", "k", "10", "v"]);
    assert_eq!(db.run(&["TTL", "k"]), int(10));
    db.ok(&["PSETEX", "k", "2500", "v"]);
    assert_eq!(db.run(&["PTTL", "k"]), int(2500));
    assert_eq!(db.run(&["SETNX", "k", "x"]), int(0));
    assert_eq!(db.run(&["SETNX", "n", "x"]), int(1));
    assert_eq!(db.run(&["GET", "n"]), bulk("x"));
    assert_eq!(db.run(&["GETSET", "k", "new"]), bulk("v"));
    assert_eq!(db.run(&["TTL", "k"]), int(-1), "GETSET clears the TTL");
    assert_eq!(db.run(&["GETSET", "fresh", "1"]), Reply::Nil);
}

#[test]
fn getdel_and_getex() {
    let mut db = Db::new();
    assert_eq!(db.run(&["GETDEL", "k"]), Reply::Nil);
    db.ok(&["SET", "k", "v"]);
    assert_eq!(db.run(&["GETDEL", "k"]), bulk("v"));
    assert_eq!(db.run(&["EXISTS", "k"]), int(0));

    assert_eq!(db.run(&["GETEX", "k"]), Reply::Nil);
    db.ok(&["SET", "k", "v"]);
    assert_eq!(db.run(&["GETEX", "k"]), bulk("v"));
    assert_eq!(db.run(&["GETEX", "k", "EX", "5"]), bulk("v"));
    assert_eq!(db.run(&["TTL", "k"]), int(5));
    assert_eq!(db.run(&["GETEX", "k", "PERSIST"]), bulk("v"));
    assert_eq!(db.run(&["TTL", "k"]), int(-1));
    let at = (T0 + 9000).to_string();
    assert_eq!(db.run(&["GETEX", "k", "PXAT", &at]), bulk("v"));
    assert_eq!(db.run(&["PTTL", "k"]), int(9000));
    assert_eq!(db.run(&["GETEX", "k", "EXAT", "1"]), bulk("v"), "value returned before deleting");
    assert_eq!(db.run(&["EXISTS", "k"]), int(0));

    let syntax = Reply::syntax();
    assert_eq!(db.run(&["GETEX", "k", "KEEPTTL"]), syntax);
    assert_eq!(db.run(&["GETEX", "k", "NX"]), syntax);
    assert_eq!(db.run(&["GETEX", "k", "EX", "5", "PERSIST"]), syntax);
    assert_eq!(db.run(&["GETEX", "k", "PERSIST", "EX", "5"]), syntax);
    assert_eq!(db.run(&["GETEX", "k", "EX", "0"]), err("ERR invalid expire time in 'getex' command"));
}

#[test]
fn mget_mset_msetnx() {
    let mut db = Db::new();
    db.ok(&["MSET", "a", "1", "b", "2", "a", "3"]);
    assert_eq!(db.run(&["MGET", "a", "b", "c", "a"]), Reply::Array(vec![bulk("3"), bulk("2"), Reply::Nil, bulk("3")]));
    assert_eq!(db.run(&["MSET", "a", "1", "b"]), err("ERR wrong number of arguments for 'mset' command"));
    assert_eq!(db.run(&["MSETNX", "a", "1", "b"]), err("ERR wrong number of arguments for 'msetnx' command"));
    db.ok(&["SET", "t", "v", "EX", "10"]);
    db.ok(&["MSET", "t", "w"]);
    assert_eq!(db.run(&["TTL", "t"]), int(-1), "MSET clears TTLs");
    assert_eq!(db.run(&["MSETNX", "x", "1", "a", "2"]), int(0));
    assert_eq!(db.run(&["EXISTS", "x"]), int(0), "MSETNX is all or nothing");
    assert_eq!(db.run(&["MSETNX", "x", "1", "y", "2"]), int(1));
    assert_eq!(db.run(&["MGET", "x", "y"]), Reply::Array(vec![bulk("1"), bulk("2")]));
}

#[test]
fn del_exists_touch_count_like_redis() {
    let mut db = Db::new();
    db.ok(&["MSET", "a", "1", "b", "2"]);
    db.ok(&["SET", "gone", "v", "PX", "1"]);
    db.now += 2;
    assert_eq!(db.run(&["EXISTS", "a", "a", "b", "c", "gone"]), int(3));
    assert_eq!(db.run(&["TOUCH", "a", "a", "c"]), int(2));
    assert_eq!(db.run(&["DEL", "a", "a", "c", "gone"]), int(1));
    assert_eq!(db.run(&["UNLINK", "b"]), int(1));
    assert_eq!(db.stored(), 0, "DEL also cleared the expired record");
}

#[test]
fn incr_family() {
    let mut db = Db::new();
    assert_eq!(db.run(&["INCR", "n"]), int(1));
    assert_eq!(db.run(&["INCRBY", "n", "41"]), int(42));
    assert_eq!(db.run(&["DECR", "n"]), int(41));
    assert_eq!(db.run(&["DECRBY", "n", "-9"]), int(50));
    assert_eq!(db.run(&["GET", "n"]), bulk("50"));
    assert_eq!(db.run(&["INCRBY", "n", "x"]), Reply::not_integer());
    assert_eq!(db.run(&["DECRBY", "n", "-9223372036854775808"]), err("ERR decrement would overflow"));
    for bad in ["abc", " 1", "1 ", "01", "+1", "1.0", ""] {
        db.ok(&["SET", "s", bad]);
        assert_eq!(db.run(&["INCR", "s"]), Reply::not_integer(), "{bad:?}");
    }
    db.ok(&["SET", "m", "9223372036854775807"]);
    assert_eq!(db.run(&["INCR", "m"]), err("ERR increment or decrement would overflow"));
    db.ok(&["SET", "m", "-9223372036854775808"]);
    assert_eq!(db.run(&["DECR", "m"]), err("ERR increment or decrement would overflow"));
    assert_eq!(db.run(&["GET", "m"]), bulk("-9223372036854775808"), "failed INCR changes nothing");
    db.ok(&["SET", "t", "1", "EX", "100"]);
    assert_eq!(db.run(&["INCR", "t"]), int(2));
    assert_eq!(db.run(&["TTL", "t"]), int(100), "INCR keeps the TTL");
}

#[test]
fn incrbyfloat() {
    let mut db = Db::new();
    db.ok(&["SET", "f", "10.50"]);
    assert_eq!(db.run(&["INCRBYFLOAT", "f", "0.1"]), bulk("10.6"));
    assert_eq!(db.run(&["INCRBYFLOAT", "f", "-5"]), bulk("5.6"));
    assert_eq!(db.run(&["GET", "f"]), bulk("5.6"));
    db.ok(&["SET", "f", "5.0e3"]);
    assert_eq!(db.run(&["INCRBYFLOAT", "f", "2.0e2"]), bulk("5200"));
    assert_eq!(db.run(&["INCRBYFLOAT", "new", "1.5"]), bulk("1.5"));
    assert_eq!(db.run(&["INCRBYFLOAT", "new", "abc"]), Reply::not_float());
    assert_eq!(db.run(&["INCRBYFLOAT", "new", "inf"]), err("ERR increment would produce NaN or Infinity"));
    assert_eq!(db.run(&["GET", "new"]), bulk("1.5"));
    db.ok(&["SET", "s", "x"]);
    assert_eq!(db.run(&["INCRBYFLOAT", "s", "1"]), Reply::not_float());
    db.ok(&["SET", "s", "1.5 "]);
    assert_eq!(db.run(&["INCRBYFLOAT", "s", "1"]), Reply::not_float());
    assert_eq!(db.run(&["INCR", "new"]), Reply::not_integer());
    db.ok(&["SET", "t", "1", "EX", "100"]);
    assert_eq!(db.run(&["INCRBYFLOAT", "t", "0.25"]), bulk("1.25"));
    assert_eq!(db.run(&["TTL", "t"]), int(100), "INCRBYFLOAT keeps the TTL");
}

#[test]
fn append_and_setrange() {
    let mut db = Db::new();
    assert_eq!(db.run(&["APPEND", "k", "ab"]), int(2));
    db.ok(&["SET", "t", "x", "EX", "50"]);
    assert_eq!(db.run(&["APPEND", "t", "yz"]), int(3));
    assert_eq!(db.run(&["GET", "t"]), bulk("xyz"));
    assert_eq!(db.run(&["TTL", "t"]), int(50));

    assert_eq!(db.run(&["SETRANGE", "r", "5", ""]), int(0));
    assert_eq!(db.run(&["EXISTS", "r"]), int(0), "empty SETRANGE creates nothing");
    assert_eq!(db.run(&["SETRANGE", "r", "3", "ab"]), int(5));
    assert_eq!(db.run(&["GET", "r"]), Reply::bulk(b"\0\0\0ab".to_vec()));
    assert_eq!(db.run(&["SETRANGE", "r", "1", "XY"]), int(5));
    assert_eq!(db.run(&["GET", "r"]), Reply::bulk(b"\0XYab".to_vec()));
    assert_eq!(db.run(&["SETRANGE", "r", "9999999999", ""]), int(5), "empty value: current length");
    assert_eq!(db.run(&["SETRANGE", "r", "-1", "a"]), err("ERR offset is out of range"));
    assert_eq!(db.run(&["SETRANGE", "r", "x", "a"]), Reply::not_integer());
    let limit = err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    assert_eq!(db.run(&["SETRANGE", "r", "536870912", "a"]), limit);
    assert_eq!(db.run(&["SETRANGE", "big", "536870911", "ab"]), limit);
    assert_eq!(db.run(&["EXISTS", "big"]), int(0));
}

#[test]
fn getrange_matches_redis_examples() {
    let mut db = Db::new();
    db.ok(&["SET", "s", "This is a string"]);
    for (start, end, want) in [
        ("0", "3", "This"),
        ("-3", "-1", "ing"),
        ("0", "-1", "This is a string"),
        ("10", "100", "string"),
        ("0", "-100", "T"),
        ("5", "3", ""),
        ("-1", "-5", ""),
        ("100", "200", ""),
        ("-100", "2", "Thi"),
        ("-9223372036854775808", "9223372036854775807", "This is a string"),
    ] {
        assert_eq!(db.run(&["GETRANGE", "s", start, end]), bulk(want), "{start} {end}");
    }
    assert_eq!(db.run(&["SUBSTR", "s", "0", "3"]), bulk("This"));
    assert_eq!(db.run(&["GETRANGE", "missing", "0", "-1"]), bulk(""));
    assert_eq!(db.run(&["GETRANGE", "s", "a", "1"]), Reply::not_integer());
}

#[test]
fn expire_family() {
    let mut db = Db::new();
    assert_eq!(db.run(&["EXPIRE", "k", "10"]), int(0));
    db.ok(&["SET", "k", "v"]);
    assert_eq!(db.run(&["EXPIRE", "k", "10", "XX"]), int(0), "XX needs a TTL");
    assert_eq!(db.run(&["EXPIRE", "k", "10", "GT"]), int(0), "no TTL is infinite for GT");
    assert_eq!(db.run(&["EXPIRE", "k", "10", "xx", "gt"]), int(0));
    assert_eq!(db.run(&["EXPIRE", "k", "100", "LT"]), int(1), "anything is less than infinite");
    assert_eq!(db.run(&["EXPIRE", "k", "10", "NX"]), int(0));
    assert_eq!(db.run(&["EXPIRE", "k", "200", "GT"]), int(1));
    assert_eq!(db.run(&["EXPIRE", "k", "150", "GT"]), int(0));
    assert_eq!(db.run(&["EXPIRE", "k", "300", "LT"]), int(0));
    assert_eq!(db.run(&["PEXPIRE", "k", "5000", "XX", "LT"]), int(1));
    assert_eq!(db.run(&["PTTL", "k"]), int(5000));
    let at = (T0 / 1000 + 60).to_string();
    assert_eq!(db.run(&["EXPIREAT", "k", &at]), int(1));
    assert_eq!(db.run(&["TTL", "k"]), int(60));
    let pat = (T0 + 1234).to_string();
    assert_eq!(db.run(&["PEXPIREAT", "k", &pat]), int(1));
    assert_eq!(db.run(&["PEXPIRETIME", "k"]), int((T0 + 1234) as i64));
    assert_eq!(db.run(&["PERSIST", "k"]), int(1));
    assert_eq!(db.run(&["PERSIST", "k"]), int(0));
    assert_eq!(db.run(&["PERSIST", "missing"]), int(0));
    assert_eq!(db.run(&["EXPIRE", "k", "10", "NX"]), int(1));

    assert_eq!(db.run(&["EXPIRE", "k", "-1"]), int(1), "a past deadline deletes");
    assert_eq!(db.run(&["EXISTS", "k"]), int(0));
    assert_eq!(db.stored(), 0);
    db.ok(&["SET", "k", "v"]);
    assert_eq!(db.run(&["EXPIREAT", "k", "1"]), int(1));
    assert_eq!(db.run(&["EXISTS", "k"]), int(0));
    db.ok(&["SET", "k", "v"]);
    assert_eq!(db.run(&["PEXPIRE", "k", "0"]), int(1), "deadline == now deletes");
    assert_eq!(db.run(&["EXISTS", "k"]), int(0));
}

#[test]
fn expire_errors() {
    let mut db = Db::new();
    db.ok(&["SET", "k", "v"]);
    let incompatible = err("ERR NX and XX, GT or LT options at the same time are not compatible");
    assert_eq!(db.run(&["EXPIRE", "k", "10", "NX", "XX"]), incompatible);
    assert_eq!(db.run(&["EXPIRE", "k", "10", "NX", "GT"]), incompatible);
    assert_eq!(
        db.run(&["EXPIRE", "k", "10", "GT", "LT"]),
        err("ERR GT and LT options at the same time are not compatible")
    );
    assert_eq!(db.run(&["EXPIRE", "k", "abc", "foo"]), err("ERR Unsupported option foo"));
    assert_eq!(db.run(&["EXPIRE", "k", "abc"]), Reply::not_integer());
    assert_eq!(db.run(&["EXPIRE", "k", "9223372036854775807"]), err("ERR invalid expire time in 'expire' command"));
    assert_eq!(
        db.run(&["EXPIREAT", "k", "-9223372036854775807"]),
        err("ERR invalid expire time in 'expireat' command")
    );
    assert_eq!(
        db.run(&["PEXPIRE", "k", "9223372036854775807"]),
        err("ERR invalid expire time in 'pexpire' command"),
        "now + ms overflows whatever the clock: refused as the command is read"
    );
    // Within a clock's reach of the limit, the overflow is found as the
    // write applies, where EXPIRE and PEXPIRE are one operation.
    let near = (i64::MAX - 1_704_067_200_000).to_string();
    db.ok(&["SET", "near", "v"]);
    db.now = 1_800_000_000_000;
    assert_eq!(db.run(&["PEXPIRE", "near", &near]), err("ERR invalid expire time in 'expire' command"));
    db.now = 1_704_067_200_000;
    assert_eq!(db.run(&["PEXPIRE", "near", &near]), Reply::Int(1));
    db.now = T0;
    assert_eq!(db.run(&["TTL", "k"]), int(-1), "no error changed the key");
}

#[test]
fn ttl_and_expiretime_sentinels() {
    let mut db = Db::new();
    assert_eq!(db.run(&["TTL", "k"]), int(-2));
    assert_eq!(db.run(&["PTTL", "k"]), int(-2));
    assert_eq!(db.run(&["EXPIRETIME", "k"]), int(-2));
    db.ok(&["SET", "k", "v"]);
    assert_eq!(db.run(&["TTL", "k"]), int(-1));
    assert_eq!(db.run(&["PEXPIRETIME", "k"]), int(-1));
    db.ok(&["SET", "k", "v", "PX", "1499"]);
    assert_eq!(db.run(&["TTL", "k"]), int(1));
}

#[test]
fn rename_and_renamenx() {
    let mut db = Db::new();
    assert_eq!(db.run(&["RENAME", "a", "b"]), err("ERR no such key"));
    assert_eq!(db.run(&["RENAMENX", "a", "b"]), err("ERR no such key"));
    assert_eq!(db.run(&["RENAME", "a", "a"]), err("ERR no such key"));
    db.ok(&["SET", "a", "1", "EX", "30"]);
    db.ok(&["RENAME", "a", "a"]);
    assert_eq!(db.run(&["RENAMENX", "a", "a"]), int(0));
    db.ok(&["RENAME", "a", "b"]);
    assert_eq!(db.run(&["GET", "b"]), bulk("1"));
    assert_eq!(db.run(&["TTL", "b"]), int(30), "the TTL moves with the value");
    assert_eq!(db.run(&["EXISTS", "a"]), int(0));
    db.ok(&["SET", "c", "3", "EX", "99"]);
    db.ok(&["SET", "d", "4"]);
    assert_eq!(db.run(&["RENAMENX", "c", "d"]), int(0));
    db.ok(&["RENAME", "d", "c"]);
    assert_eq!(db.run(&["GET", "c"]), bulk("4"));
    assert_eq!(db.run(&["TTL", "c"]), int(-1), "RENAME replaces the target and its TTL");
    assert_eq!(db.run(&["RENAMENX", "c", "e"]), int(1));
    assert_eq!(db.run(&["GET", "e"]), bulk("4"));
}

#[test]
fn keyspace_reads_and_flush() {
    let mut db = Db::new();
    db.ok(&["MSET", "user:1", "a", "user:2", "b", "other", "c", "", "empty"]);
    db.ok(&["SET", "user:3", "x", "PX", "1"]);
    db.now += 5;
    assert_eq!(db.run(&["DBSIZE"]), int(5), "an expired key counts until it is reaped");
    let reap = WriteOp::Reap { keys: vec![b"user:3".to_vec()] };
    assert_eq!(apply(&reap, db.now, &mut db.store).unwrap(), int(1));
    assert_eq!(db.run(&["DBSIZE"]), int(4));
    assert_eq!(db.run(&["KEYS", "user:*"]), Reply::Array(vec![bulk("user:1"), bulk("user:2")]));
    assert_eq!(
        db.run(&["KEYS", "*"]),
        Reply::Array(vec![bulk(""), bulk("other"), bulk("user:1"), bulk("user:2")]),
        "KEYS * includes the empty key"
    );
    db.ok(&["FLUSHDB"]);
    assert_eq!(db.run(&["DBSIZE"]), int(0));
    assert_eq!(db.stored(), 0);
    assert_eq!(db.run(&["FLUSHALL", "NOW"]), Reply::syntax());
}

#[test]
fn scan_pages_resume_after_the_last_examined_key() {
    let mut db = Db::new();
    db.ok(&["MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5"]);
    db.ok(&["SET", "b", "2", "PX", "1"]);
    db.now += 2;
    let page = |db: &Db, after: Option<&str>, pattern: Option<&str>| {
        let op = ReadOp::Scan {
            slots: 0..16,
            after: after.map(|a| a.as_bytes().to_vec()),
            count: 2,
            pattern: pattern.map(|p| p.as_bytes().to_vec()),
            kind: None,
        };
        ScanPage::from_reply(&read(&op, db.now, &db.store).unwrap()).unwrap()
    };
    let keys = |v: &[&str]| v.iter().map(|k| k.as_bytes().to_vec()).collect::<Vec<_>>();
    let p1 = page(&db, None, None);
    assert_eq!(p1.keys, keys(&["a"]), "expired b is examined but not returned");
    assert_eq!(p1.next_after, Some(b"b".to_vec()));
    let p2 = page(&db, Some("b"), Some("[cd]"));
    assert_eq!(p2.keys, keys(&["c", "d"]));
    let p3 = page(&db, Some("d"), None);
    assert_eq!(p3.keys, keys(&["e"]));
    assert_eq!((p3.next_after, p3.next_slot), (None, 16));
}

#[test]
fn dump_and_restore_move_a_key_exactly() {
    let mut src = Db::new();
    src.ok(&["SET", "k", "v", "EX", "40"]);
    let Reply::Bulk(bytes) = read(&ReadOp::Dump { key: b"k".to_vec() }, src.now, &src.store).unwrap() else {
        panic!("DUMP of a live key is a bulk string");
    };
    let record = Record::decode(&bytes).unwrap();
    assert_eq!(record, Record::expiring("v", T0 + 40_000));
    assert_eq!(read(&ReadOp::Dump { key: b"x".to_vec() }, src.now, &src.store).unwrap(), Reply::Nil);

    let mut dst = Db::new();
    let restore = WriteOp::Restore { key: b"k2".to_vec(), record: Some(record.clone()) };
    assert_eq!(apply(&restore, dst.now, &mut dst.store).unwrap(), Reply::Ok);
    assert_eq!(dst.run(&["GET", "k2"]), bulk("v"));
    assert_eq!(dst.run(&["TTL", "k2"]), int(40));
    let remove = WriteOp::Restore { key: b"k2".to_vec(), record: None };
    apply(&remove, dst.now, &mut dst.store).unwrap();
    assert_eq!(dst.stored(), 0);
    // A record that expired in flight is not installed.
    apply(&restore, T0 + 50_000, &mut dst.store).unwrap();
    assert_eq!(dst.stored(), 0);
}

#[test]
fn same_ops_same_state_on_every_replica() {
    let script: &[&[&str]] = &[
        &["SET", "a", "1", "PX", "50"],
        &["INCRBYFLOAT", "f", "0.1"],
        &["APPEND", "a", "x"],
        &["EXPIRE", "f", "1"],
        &["RENAME", "a", "b"],
    ];
    let ops: Vec<WriteOp> = script
        .iter()
        .map(|args| match parse(args.iter().map(|a| a.as_bytes().to_vec()).collect()) {
            Ok(Command::Write(op)) => op,
            other => panic!("{other:?}"),
        })
        .collect();
    let run = || {
        let mut store = MemStore::new();
        let replies: Vec<Reply> =
            ops.iter().enumerate().map(|(i, op)| apply(op, T0 + i as u64 * 10, &mut store).unwrap()).collect();
        (replies, store)
    };
    assert_eq!(run(), run());
}

/// GETRANGE by selecting indexes one at a time, in wide arithmetic.
fn naive_range(v: &[u8], start: i64, end: i64) -> Vec<u8> {
    let len = v.len() as i128;
    let (mut s, mut e) = (start as i128, end as i128);
    if s < 0 && e < 0 && s > e {
        return Vec::new();
    }
    if s < 0 {
        s += len;
    }
    if e < 0 {
        e += len;
    }
    let (s, e) = (s.max(0), e.max(0).min(len - 1));
    (0..len).filter(|i| *i >= s && *i <= e).map(|i| v[i as usize]).collect()
}

proptest! {
    #[test]
    fn getrange_agrees_with_naive(
        v in proptest::collection::vec(any::<u8>(), 0..12),
        start in prop_oneof![-15i64..15, any::<i64>()],
        end in prop_oneof![-15i64..15, any::<i64>()],
    ) {
        prop_assert_eq!(get_range(&v, start, end).to_vec(), naive_range(&v, start, end));
    }

    #[test]
    fn setrange_agrees_with_vec_model(
        init in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        offset in 0u64..12,
        value in proptest::collection::vec(any::<u8>(), 0..6),
    ) {
        let mut store = MemStore::new();
        if let Some(init) = &init {
            store.put(b"k", &Record::new(init.clone())).unwrap();
        }
        let op = WriteOp::SetRange { key: b"k".to_vec(), offset, value: value.clone() };
        let reply = apply(&op, T0, &mut store).unwrap();
        let mut model = init.clone().unwrap_or_default();
        if !value.is_empty() {
            let end = offset as usize + value.len();
            if model.len() < end {
                model.resize(end, 0);
            }
            model[offset as usize..end].copy_from_slice(&value);
        }
        prop_assert_eq!(reply, Reply::Int(model.len() as i64));
        let stored = store.get(b"k").unwrap().map(|r| r.value);
        let expect_key = init.is_some() || !value.is_empty();
        prop_assert_eq!(stored, expect_key.then_some(model));
    }
}

fn tx(args: &[&str]) -> crate::kv::TxOp {
    match parse(args.iter().map(|a| a.as_bytes().to_vec()).collect()).unwrap() {
        Command::Write(op) => crate::kv::TxOp::Write(op),
        Command::Read(op) => crate::kv::TxOp::Read(op),
        other => panic!("{other:?} is not a data command"),
    }
}

/// A transaction's ops run in order against one store: each read sees the
/// writes before it, and an op that fails at run time fails alone.
#[test]
fn exec_runs_ops_in_order_and_errors_stay_per_op() {
    let mut db = Db::new();
    let ops =
        [tx(&["SET", "a", "x"]), tx(&["INCR", "a"]), tx(&["APPEND", "a", "y"]), tx(&["GET", "a"]), tx(&["DEL", "a"])];
    let out = exec(&ops, db.now, &mut db.store).unwrap();
    assert_eq!(out[0], Reply::Ok);
    assert_eq!(out[1], Reply::not_integer());
    assert_eq!(out[2], Reply::Int(2));
    assert_eq!(out[3], Reply::Bulk(b"xy".to_vec()));
    assert_eq!(out[4], Reply::Int(1));
    assert!(!crate::kv::TxOp::Write(WriteOp::Flush).transactional());
    assert!(!crate::kv::TxOp::Read(ReadOp::DbSize).transactional());
    assert!(tx(&["MGET", "a", "b"]).transactional());
}

#[test]
fn versions_read_zero_for_keys_that_do_not_live() {
    let mut db = Db::new();
    db.store.put(b"v", &Record::new("1").stamped(7)).unwrap();
    db.store.put(b"old", &Record::expiring("1", T0 - 1).stamped(3)).unwrap();
    let op = ReadOp::Versions { keys: vec![b"v".to_vec(), b"old".to_vec(), b"none".to_vec()] };
    assert_eq!(read(&op, db.now, &db.store).unwrap(), Reply::Array(vec![Reply::Int(7), Reply::Int(0), Reply::Int(0)]));
}

#[test]
fn exec_runs_only_while_watched_versions_hold() {
    let mut db = Db::new();
    db.store.put(b"w", &Record::new("1").stamped(7)).unwrap();
    let watch = |v| Some(crate::kv::Watch { prg: "t:0".into(), keys: vec![(b"w".to_vec(), v), (b"none".to_vec(), 0)] });
    let op = |v| WriteOp::Exec { watch: watch(v), ops: vec![tx(&["SET", "x", "1"])] };
    assert_eq!(apply(&op(6), db.now, &mut db.store).unwrap(), Reply::NilArray);
    assert_eq!(read(&ReadOp::Get { key: b"x".to_vec() }, db.now, &db.store).unwrap(), Reply::Nil);
    assert_eq!(apply(&op(7), db.now, &mut db.store).unwrap(), Reply::Array(vec![Reply::Ok]));
    assert!(!crate::kv::TxOp::Write(op(7)).transactional(), "no transaction inside a transaction");
}

#[test]
fn object_reports_plausible_string_encodings() {
    let mut db = Db::new();
    let long = "x".repeat(45);
    for (value, enc) in
        [("12345", "int"), ("-7", "int"), ("007", "embstr"), ("hello", "embstr"), (long.as_str(), "raw")]
    {
        db.run(&["SET", "k", value]);
        assert_eq!(db.run(&["OBJECT", "ENCODING", "k"]), Reply::bulk(enc), "{value}");
    }
    assert_eq!(db.run(&["OBJECT", "ENCODING", "missing"]), Reply::Nil);
    assert_eq!(db.run(&["OBJECT", "REFCOUNT", "k"]), Reply::Int(1));
    assert_eq!(db.run(&["OBJECT", "IDLETIME", "k"]), Reply::Int(0));
    assert!(
        matches!(db.run(&["OBJECT", "FREQ", "k"]), Reply::Error(e) if e.starts_with("ERR An LFU maxmemory policy"))
    );
    assert_eq!(db.run(&["OBJECT", "ENCODING"]), Reply::wrong_arity("object|encoding"));
}

#[test]
fn strings_changed_in_place_stay_raw_until_set_again() {
    let mut db = Db::new();
    let enc = |db: &mut Db| db.run(&["OBJECT", "ENCODING", "k"]);
    // As Redis's "SETRANGE against integer-encoded key".
    db.ok(&["SET", "k", "1234"]);
    assert_eq!(db.run(&["SETRANGE", "k", "0", ""]), int(4));
    assert_eq!(enc(&mut db), bulk("int"), "nothing set, nothing changed");
    assert_eq!(db.run(&["SETRANGE", "k", "0", "2"]), int(4));
    assert_eq!(enc(&mut db), bulk("raw"));
    assert_eq!(db.run(&["GET", "k"]), bulk("2234"));
    assert_eq!(db.run(&["EXPIRE", "k", "100"]), int(1));
    assert_eq!(enc(&mut db), bulk("raw"), "a TTL does not change the encoding");
    for change in [&["APPEND", "k", "5"][..], &["SETBIT", "k", "0", "0"], &["BITFIELD", "k", "SET", "u8", "0", "49"]] {
        db.ok(&["SET", "k", "7"]);
        assert_eq!(enc(&mut db), bulk("int"));
        db.run(change);
        assert_eq!(enc(&mut db), bulk("raw"), "{change:?}");
    }
    assert_eq!(db.run(&["INCR", "k"]), int(2), "BITFIELD wrote '1' over '7'");
    assert_eq!(enc(&mut db), bulk("int"), "INCR stores a new integer");
    db.ok(&["SET", "a", "x"]);
    assert_eq!(db.run(&["BITOP", "NOT", "k", "a"]), int(1));
    assert_eq!(enc(&mut db), bulk("raw"), "BITOP makes a raw string");
    assert_eq!(db.run(&["APPEND", "fresh", "12"]), int(2));
    assert_eq!(db.run(&["OBJECT", "ENCODING", "fresh"]), bulk("int"), "APPEND to no key stores the value as SET");
    assert_eq!(db.run(&["COPY", "k", "copy"]), int(1));
    assert_eq!(db.run(&["OBJECT", "ENCODING", "copy"]), bulk("raw"), "a copy keeps the encoding");
}

#[test]
fn a_random_key_is_a_live_key_or_nil() {
    let mut db = Db::new();
    let op = |seed| ReadOp::RandomKey { seed };
    assert_eq!(read(&op(1), db.now, &db.store).unwrap(), Reply::Nil);
    db.run(&["SET", "gone", "1", "PX", "1"]);
    db.now += 10;
    assert_eq!(read(&op(1), db.now, &db.store).unwrap(), Reply::Nil, "an expired key is not offered");
    for k in ["a", "m", "z"] {
        db.run(&["SET", k, "1"]);
    }
    let mut seen = std::collections::BTreeSet::new();
    for seed in [0u64, u64::MAX, 0x6d00_0000_0000_0000, 0x6100_0000_0000_0000] {
        let Reply::Bulk(k) = read(&op(seed), db.now, &db.store).unwrap() else { panic!("a key") };
        assert!(["a", "m", "z"].contains(&std::str::from_utf8(&k).unwrap()));
        seen.insert(k);
    }
    assert!(seen.len() > 1, "different seeds find different keys: {seen:?}");
}

/// Redis's "trim on SET with big value" (run by Redis's suite only where
/// INFO names jemalloc): a value set after a larger one costs its own
/// size, not the larger one's. tidal keeps no query buffer in a value.
#[test]
fn memory_usage_of_a_value_is_its_own_size() {
    let mut db = Db::new();
    db.ok(&["SET", "key", &"A".repeat(100_000)]);
    db.ok(&["SET", "key", &"A".repeat(33_000)]);
    let Reply::Int(n) = db.run(&["MEMORY", "USAGE", "key"]) else { panic!("MEMORY USAGE") };
    assert!((33_000..42_000).contains(&n), "{n}");
}
