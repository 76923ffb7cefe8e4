//! Hashes and sets against a real cluster: a large collection moves with
//! its slot to another PRG and arrives whole, element by element, while a
//! WATCH on it notices the move.

mod common;

use common::{json_of, Cluster, Value};

fn int(v: Value) -> i64 {
    match v {
        Value::Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

#[test]
fn a_large_hash_and_set_move_with_their_slot_whole() {
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
    assert_eq!(int(cl.cmd(&["DBSIZE"]).unwrap()), 2, "element rows are not keys");
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
    assert_eq!(int(cl.cmd(&["DEL", "{c}h", "{c}s"]).unwrap()), 2);
    assert_eq!(int(cl.cmd(&["DBSIZE"]).unwrap()), 0);
    assert_eq!(int(cl.cmd(&["HLEN", "{c}h"]).unwrap()), 0);
}
