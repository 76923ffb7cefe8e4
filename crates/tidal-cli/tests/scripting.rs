//! EVAL and SCRIPT against a real 3-node cluster: a script runs at the
//! leader of its slot's PRG, its writes apply on every replica as one, a
//! busy script answers BUSY to the node's other clients, and SCRIPT KILL
//! stops it with nothing it wrote applied.

mod common;

use std::time::Duration;

use common::{Cluster, Value};

fn err_has(v: &Value, text: &str) -> bool {
    matches!(v, Value::Error(e) if e.contains(text))
}

#[test]
fn a_script_runs_at_its_leader_and_what_it_wrote_reaches_every_replica() {
    let c = Cluster::start(3, &[]);
    let mut cl = c.client(0);
    let script = "redis.call('set', KEYS[1], ARGV[1]); redis.call('incrby', KEYS[2], ARGV[1]); \
                  return {redis.call('get', KEYS[1]), redis.call('get', KEYS[2])}";
    let got = cl.cmd(&["EVAL", script, "2", "{s}a", "{s}b", "5"]).unwrap();
    assert_eq!(got, Value::Array(vec![Value::bulk("5"), Value::bulk("5")]));
    for i in 0..3 {
        assert_eq!(c.client(i).cmd(&["GET", "{s}b"]).unwrap(), Value::bulk("5"), "node {i}");
    }
    // Keys of another slot than the declared ones are refused.
    let cross = cl.cmd(&["EVAL", "return redis.call('get', 'other')", "1", "{s}a"]).unwrap();
    assert!(err_has(&cross, "do not hash to the same slot"), "{cross:?}");
    assert_eq!(
        cl.cmd(&["EVAL", "return 1", "2", "{s}a", "other"]).unwrap(),
        Value::Error("CROSSSLOT Keys in request don't hash to the same slot".into())
    );
    // A script without keys runs where its first key's slot is served,
    // whichever PRG that is.
    for round in 1..=2 {
        for k in 0..12 {
            let key = format!("counter{k}");
            let got = cl.cmd(&["EVAL", "return redis.call('incr', ARGV[1])", "0", &key]).unwrap();
            assert_eq!(got, Value::Int(round), "{key}");
        }
    }
    // Scripts without keys that meet in one slot run one at a time, from
    // every node at once: no increment is lost.
    let writers: Vec<_> = (0..6)
        .map(|i| {
            let mut cl = c.client(i % 3);
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let got = cl.cmd(&["EVAL", "return redis.call('incr', ARGV[1])", "0", "shared"]).unwrap();
                    assert!(matches!(got, Value::Int(_)), "{got:?}");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(cl.cmd(&["GET", "shared"]).unwrap(), Value::bulk("150"));
    // What a script wrote before its error stays, as in Redis.
    let failed = cl.cmd(&["EVAL", "redis.call('set', KEYS[1], 'x'); return redis.call('incr', KEYS[1])", "1", "{t}k"]);
    assert!(err_has(&failed.unwrap(), "ERR value is not an integer or out of range script: "));
    assert_eq!(cl.cmd(&["GET", "{t}k"]).unwrap(), Value::bulk("x"));
    // The cache is the node's: EVALSHA works where the script was seen.
    let sha = match cl.cmd(&["SCRIPT", "LOAD", "return redis.call('get',KEYS[1])"]).unwrap() {
        Value::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(sha, "fd758d1589d044dd850a6f05d52f2eefd27f033f");
    assert_eq!(cl.cmd(&["EVALSHA", &sha.to_uppercase(), "1", "{t}k"]).unwrap(), Value::bulk("x"));
    let elsewhere = c.client(1).cmd(&["EVALSHA", &sha, "1", "{t}k"]).unwrap();
    assert_eq!(elsewhere, Value::Error("NOSCRIPT No matching script. Please use EVAL.".into()));
    // Read-only forms refuse writes; nothing is applied.
    let ro = cl.cmd(&["EVAL_RO", "return redis.call('del', KEYS[1])", "1", "{t}k"]).unwrap();
    assert!(err_has(&ro, "Write commands are not allowed from read-only scripts."), "{ro:?}");
    assert_eq!(cl.cmd(&["GET", "{t}k"]).unwrap(), Value::bulk("x"));
    // Streams are not read by waiting from a script.
    let block = cl.cmd(&["EVAL", "return redis.pcall('xread','BLOCK',0,'STREAMS',KEYS[1],'$')", "1", "{t}s"]).unwrap();
    assert!(err_has(&block, "xread command is not allowed with BLOCK option from scripts"), "{block:?}");
    // The sandbox: no new globals.
    let global = cl.cmd(&["EVAL", "a = 10", "0"]).unwrap();
    assert!(err_has(&global, "Attempt to modify a readonly table"), "{global:?}");
}

#[test]
fn a_busy_script_answers_busy_and_script_kill_stops_it_with_nothing_applied() {
    let c = Cluster::start(3, &[]);
    let mut cl = c.client(0);
    assert_eq!(cl.cmd(&["CONFIG", "SET", "lua-time-limit", "10"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(cl.cmd(&["SCRIPT", "KILL"]).unwrap(), Value::Error("NOTBUSY No scripts in execution right now.".into()));
    let mut runner = c.client(0);
    let looping = "redis.call('set', KEYS[1], 'written'); while true do end";
    runner.send_raw(&common::Client::encode(&[b"EVAL", looping.as_bytes(), b"1", b"{b}x"])).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let busy = cl.cmd(&["INCR", "xx"]).unwrap();
    assert!(err_has(&busy, "BUSY Redis is busy running a script"), "{busy:?}");
    assert_eq!(cl.cmd(&["MULTI"]).unwrap(), Value::Simple("OK".into()));
    assert!(err_has(&cl.cmd(&["INCR", "xx"]).unwrap(), "BUSY"));
    let exec = cl.cmd(&["EXEC"]).unwrap();
    assert!(err_has(&exec, "EXECABORT Transaction discarded because of: BUSY"), "{exec:?}");
    assert_eq!(cl.cmd(&["SCRIPT", "KILL"]).unwrap(), Value::Simple("OK".into()));
    let killed = runner.read().unwrap();
    assert!(err_has(&killed, "ERR Script killed by user with SCRIPT KILL..."), "{killed:?}");
    // Nothing the killed script wrote applied, and the node serves again.
    assert_eq!(cl.cmd(&["GET", "{b}x"]).unwrap(), Value::Nil);
    assert_eq!(cl.cmd(&["INCR", "xx"]).unwrap(), Value::Int(1));
}

/// A script queued in MULTI runs at EXEC in its place, with the commands
/// around it, as one write; a changed WATCHed key makes EXEC fail whole.
#[test]
fn a_script_inside_a_transaction_runs_in_its_place_and_watch_guards_it() {
    let c = Cluster::start(3, &[]);
    let mut cl = c.client(0);
    let queued = Value::Simple("QUEUED".into());
    assert_eq!(cl.cmd(&["MULTI"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(cl.cmd(&["SET", "{m}a", "1"]).unwrap(), queued);
    assert_eq!(cl.cmd(&["EVAL", "return redis.call('incrby', KEYS[1], ARGV[1])", "1", "{m}a", "41"]).unwrap(), queued);
    assert_eq!(cl.cmd(&["GET", "{m}a"]).unwrap(), queued);
    assert_eq!(cl.cmd(&["EVALSHA", "0000000000000000000000000000000000000000", "0"]).unwrap(), queued);
    let exec = cl.cmd(&["EXEC"]).unwrap();
    assert_eq!(
        exec,
        Value::Array(vec![
            Value::Simple("OK".into()),
            Value::Int(42),
            Value::bulk("42"),
            Value::Error("NOSCRIPT No matching script. Please use EVAL.".into()),
        ])
    );
    assert_eq!(c.client(2).cmd(&["GET", "{m}a"]).unwrap(), Value::bulk("42"));
    // A key of another slot in the transaction is refused as it is queued.
    assert_eq!(cl.cmd(&["MULTI"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(cl.cmd(&["SET", "{m}a", "1"]).unwrap(), queued);
    let cross = cl.cmd(&["EVAL", "return 1", "1", "{n}b"]).unwrap();
    assert_eq!(cross, Value::Error("CROSSSLOT Keys in request don't hash to the same slot".into()));
    assert!(matches!(cl.cmd(&["EXEC"]).unwrap(), Value::Error(e) if e.starts_with("EXECABORT")));
    // WATCH: another client's write in between fails the whole EXEC.
    assert_eq!(cl.cmd(&["WATCH", "{m}a"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(c.client(1).cmd(&["SET", "{m}a", "changed"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(cl.cmd(&["MULTI"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(cl.cmd(&["EVAL", "return redis.call('set', KEYS[1], 'mine')", "1", "{m}a"]).unwrap(), queued);
    assert_eq!(cl.cmd(&["EXEC"]).unwrap(), Value::Nil);
    assert_eq!(cl.cmd(&["GET", "{m}a"]).unwrap(), Value::bulk("changed"));
}

/// A script sent through a node that does not lead its PRG is waited for
/// as long as it runs, past a forwarded command's usual wait (3 s): its
/// client gets its answer, here SCRIPT KILL's, never an unknown outcome.
#[test]
fn a_forwarded_script_is_answered_however_long_it_runs() {
    let c = Cluster::start(3, &["--prgs", "1", "--slots", "16"]);
    let leader = common::wait_for(Duration::from_secs(30), "a leader", || c.leader_of("default:0"));
    let at_leader = (leader - 1) as usize;
    let far = (at_leader + 1) % 3;
    let mut admin = c.client(at_leader);
    assert_eq!(admin.cmd(&["CONFIG", "SET", "lua-time-limit", "10"]).unwrap(), Value::Simple("OK".into()));
    let mut runner = c.client(far);
    let looping = "redis.call('set', KEYS[1], 'written'); while true do end";
    runner.send_raw(&common::Client::encode(&[b"EVAL", looping.as_bytes(), b"1", b"{f}x"])).unwrap();
    std::thread::sleep(Duration::from_millis(3_600));
    assert_eq!(admin.cmd(&["SCRIPT", "KILL"]).unwrap(), Value::Simple("OK".into()));
    let killed = runner.read().unwrap();
    assert!(err_has(&killed, "ERR Script killed by user with SCRIPT KILL..."), "{killed:?}");
    assert_eq!(runner.cmd(&["GET", "{f}x"]).unwrap(), Value::Nil);
}
