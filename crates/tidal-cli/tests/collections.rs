//! Collections against a real cluster: a large collection (a hash, a set,
//! a stream with a consumer group) moves with its slot to another PRG and
//! arrives whole, element by element, while a WATCH on it notices the move;
//! redis-py reads every type in RESP2 and RESP3.

mod common;

use common::{json_of, Cluster, Value};

fn int(v: Value) -> i64 {
    match v {
        Value::Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

#[test]
fn a_large_hash_set_sorted_set_and_stream_move_with_their_slot_whole() {
    let c = Cluster::start(3, &["--prgs", "1", "--slots", "16"]);
    let mut cl = c.client(0);
    const FIELDS: usize = 20_000;
    const MEMBERS: usize = 5_000;
    for batch in 0..FIELDS / 100 {
        let mut args: Vec<String> = vec!["HSET".into(), "{c}h".into()];
        for i in batch * 100..(batch + 1) * 100 {
            args.extend([format!("field-{i}"), format!("value-{i}-{}", "x".repeat(40))]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(int(cl.cmd(&refs).unwrap()), 100);
    }
    for batch in 0..MEMBERS / 500 {
        let mut args: Vec<String> = vec!["SADD".into(), "{c}s".into()];
        args.extend((batch * 500..(batch + 1) * 500).map(|i| format!("m{i}")));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(int(cl.cmd(&refs).unwrap()), 500);
    }
    // A sorted set large enough to keep its score index, and one small
    // enough to go without.
    let mut args: Vec<String> = vec!["ZADD".into(), "{c}z".into()];
    for i in 0..1_000 {
        args.extend([format!("{}", i % 37), format!("m{i}")]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(int(cl.cmd(&refs).unwrap()), 1_000);
    assert_eq!(int(cl.cmd(&["ZADD", "{c}y", "2", "b", "1", "c", "-1", "a"]).unwrap()), 3);
    let zsets_before = (
        cl.cmd(&["ZRANGE", "{c}z", "0", "-1", "WITHSCORES"]).unwrap(),
        cl.cmd(&["ZRANGE", "{c}y", "0", "-1", "WITHSCORES"]).unwrap(),
    );
    // A stream of many nodes, with a consumer group and pending entries,
    // sent pipelined (each XADD's reply read after all are sent).
    const ENTRIES: usize = 3_000;
    let mut pipeline = Vec::new();
    for i in 1..=ENTRIES {
        let (id, v) = (format!("{i}-{}", i % 5), format!("e{i}"));
        pipeline.extend(common::Client::encode(&[b"XADD", b"{c}x", id.as_bytes(), b"n", v.as_bytes()]));
    }
    cl.send_raw(&pipeline).unwrap();
    for _ in 0..ENTRIES {
        assert!(matches!(cl.read().unwrap(), Value::Bulk(_)));
    }
    cl.cmd(&["XGROUP", "CREATE", "{c}x", "g", "0"]).unwrap();
    cl.cmd(&["XREADGROUP", "GROUP", "g", "alice", "COUNT", "250", "STREAMS", "{c}x", ">"]).unwrap();
    cl.cmd(&["XDEL", "{c}x", "7-2"]).unwrap();
    let stream_before = (
        cl.cmd(&["XRANGE", "{c}x", "-", "+"]).unwrap(),
        cl.cmd(&["XPENDING", "{c}x", "g"]).unwrap(),
        cl.cmd(&["XINFO", "STREAM", "{c}x"]).unwrap(),
    );
    assert_eq!(int(cl.cmd(&["DBSIZE"]).unwrap()), 5, "element rows are not keys");
    let mut watcher = c.client(1);
    assert_eq!(watcher.cmd(&["WATCH", "{c}h"]).unwrap(), Value::Simple("OK".into()));

    json_of(&c.tidal(&["prgs", "add", "--count", "1"]));
    let moved = json_of(&c.tidal(&["move", "slots", "--slots", "0-15", "--to", "default:1", "--wait"]));
    assert_eq!(moved["state"], "done", "{moved}");
    assert!(moved["bytes"].as_u64().unwrap() > (FIELDS * 50) as u64, "the elements were copied: {moved}");

    // Every element arrived, on every node's view.
    for i in 0..3 {
        let mut cl = c.client(i);
        assert_eq!(int(cl.cmd(&["HLEN", "{c}h"]).unwrap()), FIELDS as i64);
        assert_eq!(int(cl.cmd(&["SCARD", "{c}s"]).unwrap()), MEMBERS as i64);
        let want = format!("value-12345-{}", "x".repeat(40));
        assert_eq!(cl.cmd(&["HGET", "{c}h", "field-12345"]).unwrap(), Value::bulk(&want));
        assert_eq!(int(cl.cmd(&["SISMEMBER", "{c}s", "m4999"]).unwrap()), 1);
        let stream_after = (
            cl.cmd(&["XRANGE", "{c}x", "-", "+"]).unwrap(),
            cl.cmd(&["XPENDING", "{c}x", "g"]).unwrap(),
            cl.cmd(&["XINFO", "STREAM", "{c}x"]).unwrap(),
        );
        assert!(stream_after == stream_before, "the stream, its nodes and its group moved whole");
        let zsets_after = (
            cl.cmd(&["ZRANGE", "{c}z", "0", "-1", "WITHSCORES"]).unwrap(),
            cl.cmd(&["ZRANGE", "{c}y", "0", "-1", "WITHSCORES"]).unwrap(),
        );
        assert!(zsets_after == zsets_before, "both sorted sets moved whole");
        // Score 0 holds m0, m37, ..., m999: 28 members, m999 the last by name.
        assert_eq!(int(cl.cmd(&["ZRANK", "{c}z", "m999"]).unwrap()), 27);
        let Value::Array(last) = cl.cmd(&["XREVRANGE", "{c}x", "+", "-", "COUNT", "1"]).unwrap() else { panic!() };
        assert_eq!(last.len(), 1);
    }
    let mut cursor = "0".to_string();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let Value::Array(parts) = cl.cmd(&["SSCAN", "{c}s", &cursor, "COUNT", "700"]).unwrap() else { panic!() };
        let (Value::Bulk(next), Value::Array(items)) = (&parts[0], &parts[1]) else { panic!("{parts:?}") };
        for m in items {
            let Value::Bulk(m) = m else { panic!() };
            seen.insert(m.clone());
        }
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), MEMBERS, "SSCAN after the move");

    // The watched hash moved to another PRG: the transaction does not run.
    watcher.cmd(&["MULTI"]).unwrap();
    watcher.cmd(&["HSET", "{c}h", "late", "1"]).unwrap();
    assert_eq!(watcher.cmd(&["EXEC"]).unwrap(), Value::Nil);
    assert_eq!(int(cl.cmd(&["HSET", "{c}h", "new", "1"]).unwrap()), 1);
    assert_eq!(int(cl.cmd(&["DEL", "{c}h", "{c}s", "{c}x", "{c}z", "{c}y"]).unwrap()), 5);
    assert_eq!(int(cl.cmd(&["DBSIZE"]).unwrap()), 0);
    assert_eq!(int(cl.cmd(&["HLEN", "{c}h"]).unwrap()), 0);
}

/// redis-py, in RESP2 and in RESP3 (where Redis nests member/score pairs,
/// sends scores as doubles and XREAD's streams as a map), reads hashes,
/// sets, lists, sorted sets and streams, in pipelines too.
#[test]
fn redis_py_reads_every_type_in_both_protocols() {
    let c = Cluster::start(3, &[]);
    let addr = &c.nodes[0].redis;
    let script = format!(
        "import redis\n\
         host, port = '{addr}'.split(':')\n\
         for proto in (2, 3):\n    \
             r = redis.Redis(host=host, port=int(port), protocol=proto, decode_responses=True)\n    \
             r.delete('{{u}}h', '{{u}}s', '{{u}}l', '{{u}}z')\n    \
             r.hset('{{u}}h', mapping={{'a': '1', 'b': '2'}})\n    \
             r.sadd('{{u}}s', 'x', 'y')\n    \
             r.rpush('{{u}}l', 1, 2, 3)\n    \
             r.zadd('{{u}}z', {{'m': 1.5, 'n': 2}})\n    \
             print(proto, sorted(r.hgetall('{{u}}h').items()), sorted(r.smembers('{{u}}s')), r.lrange('{{u}}l', 0, -1))\n    \
             print(proto, r.zrange('{{u}}z', 0, -1, withscores=True), r.zscore('{{u}}z', 'm'), r.zmscore('{{u}}z', ['n', 'x']))\n    \
             print(proto, r.zrandmember('{{u}}z', 5, withscores=True) is not None, r.hrandfield('{{u}}h', 1, withvalues=True) is not None)\n    \
             p = r.pipeline()\n    \
             p.hincrby('{{u}}h', 'a', 5).zincrby('{{u}}z', 1, 'n').lpop('{{u}}l').zpopmin('{{u}}z')\n    \
             print(proto, p.execute())\n    \
             r.delete('{{u}}sl', '{{u}}sorted')\n    \
             r.rpush('{{u}}sl', 1, 2, 3)\n    \
             r.mset({{'{{u}}w_1': 3, '{{u}}w_2': 1, '{{u}}w_3': 2}})\n    \
             print(proto, r.sort('{{u}}sl', by='{{u}}w_*', get=['#', '{{u}}w_*']), r.sort('{{u}}sl', desc=True, start=0, num=2), r.sort('{{u}}sl', store='{{u}}sorted'), r.lrange('{{u}}sorted', 0, -1))\n    \
             for by in ('{{v}}w_*', 'w_*'):\n        \
                 try:\n            \
                     r.sort('{{u}}sl', by=by)\n        \
                 except redis.ResponseError as e:\n            \
                     print(proto, 'hash to the same slot' in str(e), 'BY option of SORT denied' in str(e))\n    \
             r.delete('{{u}}x')\n    \
             r.xadd('{{u}}x', {{'a': '1'}}, id='1-1')\n    \
             r.xadd('{{u}}x', {{'b': '2'}}, id='2-0')\n    \
             r.xgroup_create('{{u}}x', 'g', id='0')\n    \
             got = r.xreadgroup('g', 'c', {{'{{u}}x': '>'}}, count=1)\n    \
             print(proto, 'X', r.xrange('{{u}}x'), r.xread({{'{{u}}x': '1-1'}}), got, r.xpending('{{u}}x', 'g')['pending'], r.xinfo_stream('{{u}}x')['length'])\n"
    );
    let out = std::process::Command::new("python3").args(["-c", &script]).output().expect("python3 with redis-py");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = printed.lines().collect();
    for proto in ["2", "3"] {
        let of = |i: usize| lines.iter().filter(|l| l.starts_with(proto)).nth(i).copied().unwrap_or_default();
        assert_eq!(of(0), format!("{proto} [('a', '1'), ('b', '2')] ['x', 'y'] ['1', '2', '3']"), "{printed}");
        assert!(
            of(1).starts_with(&format!("{proto} [")) && of(1).contains("'m', 1.5") && of(1).contains("1.5 [2.0, None]"),
            "{printed}"
        );
        assert_eq!(of(2), format!("{proto} True True"), "{printed}");
        assert!(of(3).starts_with(&format!("{proto} [6, 3.0, '1', [")) && of(3).contains("'m', 1.5"), "{printed}");
        // SORT as redis-py sends it: BY and GET patterns of the key's slot,
        // LIMIT, DESC, STORE; a pattern of another slot, or of no fixed
        // slot, is refused.
        assert_eq!(of(4), format!("{proto} ['2', '1', '3', '2', '1', '3'] ['3', '2'] 3 ['1', '2', '3']"), "{printed}");
        assert_eq!((of(5), of(6)), (format!("{proto} True False").as_str(), format!("{proto} False True").as_str()));
        // Streams: XRANGE's entries, XREAD's and XREADGROUP's streams (a
        // map in RESP3, pairs in RESP2), XPENDING, XINFO STREAM.
        let x = of(7);
        assert!(x.starts_with(&format!("{proto} X [('1-1', {{'a': '1'}}), ('2-0', {{'b': '2'}})]")), "{printed}");
        assert!(
            x.contains("('2-0', {'b': '2'})]") && x.contains("('1-1', {'a': '1'})]") && x.ends_with(" 1 2"),
            "{printed}"
        );
    }
}
