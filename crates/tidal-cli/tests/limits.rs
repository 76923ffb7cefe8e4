//! Limits on the Redis port, against real nodes: past `--maxclients` a
//! connection is told so and closed; a connection idle past
//! `--client-timeout` is closed; a client that never takes its replies is
//! closed after `--client-write-timeout-ms`. None of it touches the other
//! clients, and CONFIG GET reports the limits. A request with too many
//! arguments, or too long an inline one, closes only its own connection.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{http_get, wait_for, Client, Cluster, Value};

/// Connections node 0 reports open.
fn open_connections(c: &Cluster) -> Option<u64> {
    let (_, body) = http_get(&c.nodes[0].http, "/metrics").ok()?;
    let line = body.lines().find(|l| l.starts_with("tidal_client_connections "))?;
    line.split(' ').nth(1)?.parse().ok()
}

fn pong(client: &mut Client) -> bool {
    matches!(client.cmd(&["PING"]), Ok(Value::Simple(s)) if s == "PONG")
}

/// Whether the server has closed `s` (a read gives EOF or an error).
fn closed(s: &mut std::net::TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn client_limits_close_only_the_connection_that_passes_them() {
    let c = Cluster::start(
        3,
        &[
            "--maxclients",
            "3",
            "--client-timeout",
            "2",
            "--client-write-timeout-ms",
            "1000",
            "--max-value-bytes",
            "1048576",
            "--max-multibulk-len",
            "4",
            "--max-inline-len",
            "32",
            "--client-reply-buffer-kb",
            "64",
        ],
    );
    let addr = c.nodes[0].redis.clone();

    // maxclients: the fourth is told so, as Redis tells it, and closed.
    let mut first = Client::connect(&addr).unwrap();
    let mut second = Client::connect(&addr).unwrap();
    let mut third = Client::connect(&addr).unwrap();
    assert!(pong(&mut first) && pong(&mut second) && pong(&mut third));
    let mut fourth = Client::connect(&addr).unwrap();
    match fourth.read() {
        Ok(Value::Error(e)) => assert_eq!(e, "ERR max number of clients reached"),
        other => panic!("the fourth client got {other:?}"),
    }
    assert!(fourth.read().is_err(), "the refused connection stays open");
    assert!(pong(&mut first), "a refusal touched an established client");
    match first.cmd(&["CONFIG", "GET", "maxclients"]) {
        Ok(Value::Array(v)) => assert_eq!(v.get(1), Some(&Value::Bulk(b"3".to_vec())), "{v:?}"),
        other => panic!("CONFIG GET maxclients: {other:?}"),
    }
    drop((second, third));
    wait_for(Duration::from_secs(10), "the closed connections to be counted out", || {
        (open_connections(&c)? <= 1).then_some(())
    });

    // The idle timeout: a quiet connection is closed after 2 s, a busy one
    // is not, nor a quiet subscriber (as in Redis).
    let mut quiet = std::net::TcpStream::connect(&addr).unwrap();
    let mut listener = Client::connect(&addr).unwrap();
    assert!(matches!(listener.cmd(&["SUBSCRIBE", "news"]).unwrap(), Value::Array(_)));
    let began = Instant::now();
    while began.elapsed() < Duration::from_millis(3500) {
        assert!(pong(&mut first), "an active client was closed");
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(closed(&mut quiet), "a connection idle for 3.5 s is still open");
    let pong_message = Value::Array(vec![Value::bulk("pong"), Value::bulk("")]);
    assert_eq!(listener.cmd(&["PING"]).unwrap(), pong_message, "a subscriber was closed for being quiet");
    drop(listener);

    // A client that sends and never reads: closed once its replies wait
    // longer than a second; the others go on.
    let value = vec![b'v'; 1 << 20];
    assert_eq!(first.cmd_bytes(&[b"SET", b"big", &value]).unwrap(), Value::Simple("OK".into()));
    drop(first);
    let mut greedy = std::net::TcpStream::connect(&addr).unwrap();
    greedy.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let get = Client::encode(&[b"GET", b"big"]);
    // Far more replies than the socket buffers hold; stop sending once
    // the server stops reading (or has closed the connection).
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(3) {
        if std::io::Write::write_all(&mut greedy, &get.repeat(64)).is_err() {
            break;
        }
    }
    let mut other = Client::connect(&addr).unwrap();
    assert!(pong(&mut other), "a client that never reads held up another");
    // `other` keeps talking while it waits, so that the 2 s idle timeout
    // never applies to it.
    wait_for(Duration::from_secs(15), "the greedy client to be closed", || {
        assert!(pong(&mut other), "a client that never reads held up another");
        (open_connections(&c)? <= 1).then_some(())
    });
    assert!(pong(&mut other));
    drop(greedy);

    // Too many arguments, or too long an inline request: that request is
    // refused as Redis refuses it, its connection closed, nothing written.
    for (request, error) in [
        (Client::encode(&[b"MSET", b"a", b"1", b"b", b"2"]), "ERR Protocol error: invalid multibulk length"),
        ([b"SET k ".as_slice(), &[b'v'; 64], b"\r\n"].concat(), "ERR Protocol error: too big inline request"),
    ] {
        let mut bad = Client::connect(&addr).unwrap();
        bad.send_raw(&request).unwrap();
        assert_eq!(bad.read().unwrap(), Value::Error(error.into()));
        assert!(bad.read().is_err(), "the connection stays open after a protocol error");
    }
    assert_eq!(other.cmd(&["EXISTS", "a", "k"]).unwrap(), Value::Int(0), "a refused request wrote");
    assert!(pong(&mut other));
}

/// A smaller peer frame (`--max-frame-mb 4`) bounds values to what one
/// frame carries: a value at the bound is written through any node and
/// replicated, one past it is refused and writes nothing. The admin API's
/// body limit is a flag too.
#[test]
fn the_peer_frame_and_body_limits_are_settings() {
    let c = Cluster::start(3, &["--max-frame-mb", "4", "--max-api-body-kb", "16"]);
    // 4 MiB less 1 MiB for the frame and the entry, less 64 KiB for a command and key.
    let most = (3 << 20) - (64 << 10);
    let value = vec![b'x'; most];
    for i in 0..3 {
        let key = format!("big{i}");
        assert_eq!(c.client(i).cmd_bytes(&[b"SET", key.as_bytes(), &value]).unwrap(), Value::Simple("OK".into()));
        let got = c.client((i + 1) % 3).cmd(&["STRLEN", &key]).unwrap();
        assert_eq!(got, Value::Int(most as i64), "written through node {} and read through another", i + 1);
    }
    let over = vec![b'x'; most + 1];
    match c.client(0).cmd_bytes(&[b"SET", b"over", &over]).unwrap() {
        Value::Error(e) => assert!(e.contains("exceeds the limit of"), "{e}"),
        other => panic!("a value past the frame's bound: {other:?}"),
    }
    assert_eq!(c.client(1).cmd(&["EXISTS", "over"]).unwrap(), Value::Int(0));

    // A RESTORE payload far below the limit whose LZF string decodes past
    // it: refused, before anything is proposed.
    let restore = |payload: &[u8]| c.client(0).cmd_bytes(&[b"RESTORE", b"lzf", b"0", payload]).unwrap();
    let small = lzf_payload(1000);
    assert_eq!(restore(&small), Value::Simple("OK".into()));
    assert_eq!(c.client(1).cmd(&["STRLEN", "lzf"]).unwrap(), Value::Int(1 + 1000 * 264));
    let bomb = lzf_payload(4 << 20 >> 8);
    assert!(bomb.len() < 64 << 10, "a payload of {} bytes", bomb.len());
    match c.client(0).cmd_bytes(&[b"RESTORE", b"bomb", b"0", &bomb]).unwrap() {
        Value::Error(e) => assert!(e.contains("bytes once decoded, more than one write takes here"), "{e}"),
        other => panic!("a payload that decodes past the frame: {other:?}"),
    }
    assert_eq!(c.client(1).cmd(&["EXISTS", "bomb"]).unwrap(), Value::Int(0));

    // A transaction whose writes together pass what one write may be is
    // aborted as it is queued, through any node (one of them leads the
    // PRG, which such an entry would stop: no peer frame carries it).
    let third = vec![b'y'; most / 2];
    for i in 0..3 {
        let mut tx = c.client(i);
        assert_eq!(tx.cmd(&["MULTI"]).unwrap(), Value::Simple("OK".into()));
        for k in ["{t}a", "{t}b"] {
            assert_eq!(tx.cmd_bytes(&[b"SET", k.as_bytes(), &third]).unwrap(), Value::Simple("QUEUED".into()));
        }
        match tx.cmd_bytes(&[b"SET", b"{t}c", &third]).unwrap() {
            Value::Error(e) => assert!(e.contains("more than one write takes here"), "{e}"),
            other => panic!("the third SET was queued: {other:?}"),
        }
        match tx.cmd(&["EXEC"]).unwrap() {
            Value::Error(e) => assert!(e.starts_with("EXECABORT"), "{e}"),
            other => panic!("EXEC: {other:?}"),
        }
        let key = format!("after{i}");
        assert_eq!(c.client((i + 1) % 3).cmd(&["SET", &key, "1"]).unwrap(), Value::Simple("OK".into()));
        assert_eq!(c.client((i + 2) % 3).cmd(&["GET", &key]).unwrap(), Value::Bulk(b"1".to_vec()));
    }
    assert_eq!(c.client(0).cmd(&["EXISTS", "{t}a", "{t}b", "{t}c"]).unwrap(), Value::Int(0));

    let body = format!("{{\"tenant\":\"default\",\"slots\":\"{}\"}}", "0,".repeat(9000));
    let (code, _) = common::http(&c.nodes[0].http, "POST", "/api/v1/moves", body.as_bytes()).unwrap();
    assert_eq!(code, 413, "an admin body past 16 KiB");
}

/// A DUMP payload of a string of `1 + 264 × runs` x's, LZF-compressed as
/// Redis compresses strings: one literal, then `runs` copies of 264 bytes
/// from one byte back.
fn lzf_payload(runs: usize) -> Vec<u8> {
    let mut lzf = vec![0x00, b'x'];
    for _ in 0..runs {
        lzf.extend_from_slice(&[0xe0, 0xff, 0x00]);
    }
    let mut out = vec![0x00, 0xc3, 0x80];
    out.extend_from_slice(&(lzf.len() as u32).to_be_bytes());
    out.push(0x80);
    out.extend_from_slice(&(1 + 264 * runs as u32).to_be_bytes());
    out.extend_from_slice(&lzf);
    out.extend_from_slice(&9u16.to_le_bytes());
    let crc = crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Concurrent writes are batched into entries, and no entry is larger
/// than a peer frame (`--max-frame-mb 2`), through any node (one leads).
#[test]
fn batched_writes_fit_the_smallest_peer_frame() {
    let c = Cluster::start(3, &["--max-frame-mb", "2"]);
    let value = vec![b'z'; 900 << 10];
    for i in 0..3 {
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..6)
                .map(|k| {
                    let (mut client, value) = (c.client(i), &value);
                    // SETs, and HSETNXs, whose values the batcher once did not count.
                    let key = format!("{{p}}{i}:{k}");
                    s.spawn(move || match k % 2 {
                        0 => client.cmd_bytes(&[b"SET", key.as_bytes(), value]).unwrap(),
                        _ => match client.cmd_bytes(&[b"HSETNX", key.as_bytes(), b"f", value]).unwrap() {
                            Value::Int(1) => Value::Simple("OK".into()),
                            other => other,
                        },
                    })
                })
                .collect();
            for w in writers {
                assert_eq!(w.join().unwrap(), Value::Simple("OK".into()), "through node {}", i + 1);
            }
        });
        let (set, hash) = (format!("{{p}}{i}:4"), format!("{{p}}{i}:5"));
        assert_eq!(c.client((i + 1) % 3).cmd(&["STRLEN", &set]).unwrap(), Value::Int(900 << 10));
        assert_eq!(c.client((i + 2) % 3).cmd(&["HSTRLEN", &hash, "f"]).unwrap(), Value::Int(900 << 10));
    }
}

/// An answer longer than a peer frame (`--max-frame-mb 4`: a hash of three
/// fields of almost 3 MiB) comes back whole through every node, the two
/// that forward the read to the PRG's leader included: HGETALL and DUMP
/// are answered as Redis answers them.
#[test]
fn answers_longer_than_a_peer_frame_come_back_through_any_node() {
    let c = Cluster::start(3, &["--max-frame-mb", "4"]);
    let fields: Vec<(String, Vec<u8>)> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, f)| (f.to_string(), vec![b'x' + i as u8; (3 << 20) - (128 << 10)]))
        .collect();
    for (f, v) in &fields {
        assert_eq!(c.client(0).cmd_bytes(&[b"HSET", b"bigh", f.as_bytes(), v]).unwrap(), Value::Int(1));
    }
    let expected: Vec<Value> =
        fields.iter().flat_map(|(f, v)| [Value::Bulk(f.clone().into_bytes()), Value::Bulk(v.clone())]).collect();
    let mut payloads = Vec::new();
    for i in 0..3 {
        let began = std::time::Instant::now();
        assert!(
            c.client(i).cmd(&["HGETALL", "bigh"]).unwrap() == Value::Array(expected.clone()),
            "HGETALL through node {}",
            i + 1
        );
        match c.client(i).cmd(&["DUMP", "bigh"]).unwrap() {
            Value::Bulk(p) => payloads.push(p),
            other => panic!("DUMP through node {}: {:?}", i + 1, other),
        }
        assert!(began.elapsed() < std::time::Duration::from_secs(5), "node {}: {:?}", i + 1, began.elapsed());
    }
    assert!(payloads.windows(2).all(|w| w[0] == w[1]), "the same payload through every node");
}
