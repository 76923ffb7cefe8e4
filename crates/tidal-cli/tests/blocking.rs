//! Blocking commands against a real cluster: a client blocked on one node
//! wakes when a push commits through another, and keeps waiting, without
//! an error, through a leader transfer and a move of its slot to another
//! PRG; several blocked clients share what arrives without loss or
//! duplicates, in the order they blocked; a client that leaves, or whose
//! command CLIENT UNBLOCK ends, is not served; a timeout answers nil.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{json_of, wait_for, Client, Cluster, Value};

fn arr(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::bulk(s)).collect())
}

/// `args` sent on `cl` from a thread; the reply and how long it took.
fn blocked(mut cl: Client, args: &[&str]) -> thread::JoinHandle<(Value, Duration)> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    thread::spawn(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let began = Instant::now();
        let reply = cl.cmd(&refs).expect("blocked command");
        (reply, began.elapsed())
    })
}

/// Long enough for a command sent from a thread to be waiting.
fn settle() {
    thread::sleep(Duration::from_millis(400));
}

/// A node other than the leader of `prg`, by index.
fn follower_of(c: &Cluster, prg: &str) -> usize {
    let leader = wait_for(Duration::from_secs(30), "a leader", || c.leader_of(prg));
    (0..3).find(|i| *i as u64 + 1 != leader).unwrap()
}

#[test]
fn blocked_clients_wake_on_commit_and_follow_leader_changes_and_moves() {
    let c = Cluster::start(3, &["--prgs", "1", "--slots", "16"]);
    let far = follower_of(&c, "default:0");
    let mut pusher = c.client((far + 1) % 3);

    // Blocked on a node that does not lead the PRG; woken by a push sent
    // through yet another node. The first key with elements is served.
    let waiter = blocked(c.client(far), &["BLPOP", "{q}a", "{q}b", "0"]);
    settle();
    assert!(!waiter.is_finished(), "BLPOP on empty lists returned early");
    assert_eq!(pusher.cmd(&["RPUSH", "{q}b", "one", "two"]).unwrap(), Value::Int(2));
    let (reply, _) = waiter.join().unwrap();
    assert_eq!(reply, arr(&["{q}b", "one"]));
    assert_eq!(pusher.cmd(&["LRANGE", "{q}b", "0", "-1"]).unwrap(), arr(&["two"]));

    // A timeout answers nil once it has passed.
    let (reply, took) = blocked(c.client(far), &["BLPOP", "{q}none", "0.5"]).join().unwrap();
    assert_eq!(reply, Value::Nil);
    assert!(took >= Duration::from_millis(500), "returned after {took:?}");

    // The PRG's leadership moves while a client waits: it is still served.
    let waiter = blocked(c.client(far), &["BRPOPLPUSH", "{q}src", "{q}dst", "0"]);
    settle();
    let leader = c.leader_of("default:0").unwrap();
    let to = (1..=3).find(|n| *n != leader).unwrap();
    let out = c.tidal(&["leader", "transfer", "--prg", "default:0", "--to", &to.to_string()]);
    assert_eq!(json_of(&out)["leader"], to, "{}", String::from_utf8_lossy(&out.stderr));
    settle();
    assert!(!waiter.is_finished(), "the blocked client was answered by the leader change");
    assert_eq!(pusher.cmd(&["LPUSH", "{q}src", "moved-leader"]).unwrap(), Value::Int(1));
    assert_eq!(waiter.join().unwrap().0, Value::bulk("moved-leader"));
    assert_eq!(pusher.cmd(&["LRANGE", "{q}dst", "0", "-1"]).unwrap(), arr(&["moved-leader"]));

    // Its slot moves to another PRG while a client waits: still served.
    let waiter = blocked(c.client(far), &["BZPOPMIN", "{q}z", "0"]);
    settle();
    json_of(&c.tidal(&["prgs", "add", "--count", "1"]));
    let moved = json_of(&c.tidal(&["move", "slots", "--slots", "0-15", "--to", "default:1", "--wait"]));
    assert_eq!(moved["state"], "done", "{moved}");
    assert!(!waiter.is_finished(), "the blocked client was answered by the move");
    assert_eq!(pusher.cmd(&["ZADD", "{q}z", "2", "m", "1", "n"]).unwrap(), Value::Int(2));
    let (reply, _) = waiter.join().unwrap();
    assert_eq!(reply, Value::Array(vec![Value::bulk("{q}z"), Value::bulk("n"), Value::bulk("1")]));
    assert_eq!(pusher.cmd(&["ZCARD", "{q}z"]).unwrap(), Value::Int(1));
}

#[test]
fn waiters_share_pushes_exactly_and_leavers_and_transactions_do_not_wait() {
    let c = Cluster::start(3, &["--prgs", "2", "--slots", "16"]);
    let mut cl = c.client(0);

    // Four clients on three nodes wait on one list, one after the other;
    // four pushes in one command feed each exactly one element, the first
    // to block first.
    let waiters: Vec<_> = (0..4)
        .map(|i| {
            let w = blocked(c.client(i % 3), &["BRPOP", "{w}list", "10"]);
            thread::sleep(Duration::from_millis(150));
            w
        })
        .collect();
    settle();
    assert_eq!(cl.cmd(&["LPUSH", "{w}list", "a", "b", "c", "d"]).unwrap(), Value::Int(4));
    let got: Vec<Value> = waiters.into_iter().map(|w| w.join().unwrap().0).collect();
    assert_eq!(got, ["a", "b", "c", "d"].map(|e| arr(&["{w}list", e])), "served in the order they blocked");
    assert_eq!(cl.cmd(&["EXISTS", "{w}list"]).unwrap(), Value::Int(0));

    // A push answers once the clients it wakes are served, as in Redis: a
    // chain of BLMOVEs has passed the element along before it returns.
    let (mut first, mut second) = (c.client(0), c.client(1));
    first.send_raw(&Client::encode(&[b"BLMOVE", b"{w}l1", b"{w}l2", b"RIGHT", b"LEFT", b"0"])).unwrap();
    settle();
    second.send_raw(&Client::encode(&[b"BLMOVE", b"{w}l2", b"{w}l3", b"LEFT", b"RIGHT", b"0"])).unwrap();
    settle();
    assert_eq!(cl.cmd(&["RPUSH", "{w}l1", "foo"]).unwrap(), Value::Int(1));
    for (list, holds) in [("{w}l1", &[][..]), ("{w}l2", &[]), ("{w}l3", &["foo"])] {
        assert_eq!(cl.cmd(&["LRANGE", list, "0", "-1"]).unwrap(), arr(holds), "{list} right after the push");
    }
    assert_eq!(first.read().unwrap(), Value::bulk("foo"));
    assert_eq!(second.read().unwrap(), Value::bulk("foo"));

    // A command pipelined behind a blocked one waits for it, in order.
    let mut piped = c.client(1);
    let mut both = Client::encode(&[b"BLMPOP", b"0", b"1", b"{w}p", b"LEFT", b"COUNT", b"5"]);
    both.extend(Client::encode(&[b"PING"]));
    piped.send_raw(&both).unwrap();
    settle();
    assert_eq!(cl.cmd(&["RPUSH", "{w}p", "x", "y"]).unwrap(), Value::Int(2));
    assert_eq!(piped.read().unwrap(), Value::Array(vec![Value::bulk("{w}p"), arr(&["x", "y"])]));
    assert_eq!(piped.read().unwrap(), Value::Simple("PONG".into()));

    // Clients that leave while blocked are not served, even by a round
    // still held at a remote leader: what arrives stays in the list.
    for i in 0..3 {
        let mut gone = c.client(i);
        gone.send_raw(&Client::encode(&[b"BLPOP", b"{w}gone", b"0"])).unwrap();
        thread::sleep(Duration::from_millis(100));
        drop(gone);
    }
    thread::sleep(Duration::from_millis(300));
    assert_eq!(cl.cmd(&["RPUSH", "{w}gone", "kept"]).unwrap(), Value::Int(1));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(cl.cmd(&["LRANGE", "{w}gone", "0", "-1"]).unwrap(), arr(&["kept"]));

    // CLIENT UNBLOCK, from another connection of the client's node, ends
    // its command with the timeout's nil or the UNBLOCKED error; the
    // client stays usable, and nothing is popped for the ended command.
    let mut admin = c.client(2);
    let mut waiting = c.client(2);
    let Value::Int(id) = waiting.cmd(&["CLIENT", "ID"]).unwrap() else { panic!("CLIENT ID") };
    let id = id.to_string();
    for (how, answer) in [
        (None, Value::Nil),
        (Some("TIMEOUT"), Value::Nil),
        (Some("ERROR"), Value::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())),
    ] {
        waiting.send_raw(&Client::encode(&[b"BLPOP", b"{w}u", b"0"])).unwrap();
        settle();
        let mut unblock = vec!["CLIENT", "UNBLOCK", &id];
        unblock.extend(how);
        assert_eq!(admin.cmd(&unblock).unwrap(), Value::Int(1), "{how:?}");
        assert_eq!(waiting.read().unwrap(), answer, "{how:?}");
    }
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id]).unwrap(), Value::Int(0), "no longer blocked");
    assert_eq!(
        admin.cmd(&["CLIENT", "UNBLOCK", "asd"]).unwrap(),
        Value::Error("ERR value is not an integer or out of range".into())
    );
    assert_eq!(
        admin.cmd(&["CLIENT", "UNBLOCK", &id, "LATER"]).unwrap(),
        Value::Error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into())
    );
    assert_eq!(cl.cmd(&["RPUSH", "{w}u", "kept"]).unwrap(), Value::Int(1));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(cl.cmd(&["LRANGE", "{w}u", "0", "-1"]).unwrap(), arr(&["kept"]), "an ended command popped");
    assert_eq!(waiting.cmd(&["BLPOP", "{w}u", "0"]).unwrap(), arr(&["{w}u", "kept"]));

    // Inside MULTI a blocking command does not wait.
    assert_eq!(cl.cmd(&["MULTI"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(cl.cmd(&["BLPOP", "{w}empty", "0"]).unwrap(), Value::Simple("QUEUED".into()));
    assert_eq!(cl.cmd(&["BLMOVE", "{w}gone", "{w}d", "LEFT", "LEFT", "0"]).unwrap(), Value::Simple("QUEUED".into()));
    assert_eq!(cl.cmd(&["EXEC"]).unwrap(), Value::Array(vec![Value::Nil, Value::bulk("kept")]));

    // Keys of several slots, bad timeouts and wrong types are refused at once.
    assert!(matches!(cl.cmd(&["BLPOP", "a", "b", "0"]).unwrap(), Value::Error(e) if e.starts_with("CROSSSLOT")));
    assert_eq!(cl.cmd(&["BLPOP", "{w}x", "-1"]).unwrap(), Value::Error("ERR timeout is negative".into()));
    cl.cmd(&["SET", "{w}s", "v"]).unwrap();
    assert_eq!(
        cl.cmd(&["BLPOP", "{w}s", "0"]).unwrap(),
        Value::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into())
    );
}
