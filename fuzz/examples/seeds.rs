//! Writes a few well-formed inputs of every target into `corpus/<target>/`,
//! so a fuzzing run starts from real encodings rather than from nothing.
//! Run from `fuzz/`: `cargo +nightly run --example seeds`.

use std::path::Path;

use tidal_control::api::CpRequest;
use tidal_control::state_format::{encode_command, encode_state};
use tidal_control::CpCommand;
use tidal_core::kv::{parse, Command};
use tidal_core::ownership::SlotCommand;
use tidal_core::{ClusterState, NodeInfo, NodeState, PrgId};
use tidal_node::forward::KvRequest;
use tidal_raft::kv_entry::{encode_batch, encode_entry, KvEntry, Row};
use tidal_raft::kv_machine::{KvMachine, KvSpec};
use tidal_raft::transport::{encode_frame, Frame, Request};
use tidal_raft::types::{encode, CommittedLeaderId, Entry, LogId, Proposal};
use tidal_raft::{Machine, Storage};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed");
}

fn frame(f: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(f, &mut out).expect("fits");
    out
}

fn write_op(args: &[&str]) -> tidal_core::kv::WriteOp {
    match parse(args.iter().map(|a| a.as_bytes().to_vec()).collect()) {
        Ok(Command::Write(op)) => op,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn cluster() -> ClusterState {
    let mut s = ClusterState::default();
    for id in 1..=3 {
        let info = NodeInfo {
            id,
            peer_addr: format!("127.0.0.1:{}", 7000 + id),
            client_addr: String::new(),
            http_addr: String::new(),
            zone: String::new(),
            state: NodeState::Active,
        };
        tidal_control::command::apply(&mut s, 0, &CpCommand::RegisterNode(info));
    }
    tidal_control::command::apply(&mut s, 0, &CpCommand::CreateTenant { name: "t".into(), slots: 16, prgs: 2 });
    tidal_control::command::apply(
        &mut s,
        0,
        &CpCommand::StartMove { tenant: "t".into(), slots: vec![0, 1], from: None, to: PrgId::new("t", 1) },
    );
    s
}

fn main() {
    // resp_decode: the first byte picks chunk size and limits.
    write("resp_decode", "pipeline", b"\x05*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    write("resp_decode", "inline", b"\xc0SET \"a\\x41\" 'b c' EX 10\r\nPING\n");
    write("resp_decode", "mset", b"\x3f*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n");

    let sets = vec![write_op(&["SET", "k", "v", "EX", "10"]), write_op(&["MSET", "a", "1", "b", "2"])];
    let entries = [
        encode_batch(&sets),
        encode(&sets),
        encode_entry(&KvEntry::Slots(SlotCommand::Release { move_id: 3, slots: vec![1, 2], to: 1, epoch: 4 })),
        encode_entry(&KvEntry::Rows {
            move_id: 3,
            rows: vec![Row { key: b"\0\x01k".to_vec(), record: Some(b"\x10v".to_vec()) }],
        }),
    ];
    for (i, e) in entries.iter().enumerate() {
        write("kv_entry", &format!("entry-{i}"), e);
    }
    let storage = Storage::in_memory().expect("storage");
    let machine = KvMachine::new("t:0", &KvSpec::whole(8));
    let txn = storage.state().read().expect("read txn");
    let mut pieces = machine.export(&txn).expect("export");
    while let Some(p) = pieces.next_piece(1024).expect("piece") {
        write("kv_entry", "piece", &p);
    }
    write("kv_entry", "record", b"\x11\0\0\0\0\0\0\x01\x02value");

    let state = cluster();
    let commands = [
        CpCommand::CreateTenant { name: "u".into(), slots: 64, prgs: 4 },
        CpCommand::AddPrgs { tenant: "t".into(), count: 1, members: Some(vec![1, 2, 3]), expect_epoch: Some(1) },
        CpCommand::CancelMove { id: 1 },
        CpCommand::StartReplicaMove { prg: PrgId::new("t", 0), from: 1, to: 2 },
    ];
    for (i, c) in commands.iter().enumerate() {
        write("cp_command", &format!("command-{i}"), &encode_command(c));
    }
    write("cp_command", "state", &encode_state(&state));
    write("cp_command", "request", &encode(&CpRequest::Propose(commands[0].clone())));

    let log_id = |index| LogId { leader_id: CommittedLeaderId { term: 2, node_id: 1 }, index };
    let frames = [
        Frame::Request {
            id: 1,
            group: "t:0".into(),
            epoch: 3,
            body: Request::App(encode(&KvRequest::WriteBatch(sets))),
        },
        Frame::Request { id: 2, group: "_cp".into(), epoch: 1, body: Request::App(encode(&CpRequest::Read)) },
        Frame::Request {
            id: 3,
            group: "t:1".into(),
            epoch: 3,
            body: Request::Append(openraft::raft::AppendEntriesRequest {
                vote: openraft::Vote::new(2, 1),
                prev_log_id: Some(log_id(4)),
                entries: vec![Entry {
                    log_id: log_id(5),
                    payload: openraft::EntryPayload::Normal(Proposal { now_ms: 9, body: entries[0].clone() }),
                }],
                leader_commit: Some(log_id(4)),
            }),
        },
        Frame::Request {
            id: 4,
            group: "t:1".into(),
            epoch: 3,
            body: Request::Snapshot {
                vote: openraft::Vote::new(2, 1),
                meta: Default::default(),
                offset: 0,
                data: b"piece".to_vec(),
                done: false,
            },
        },
    ];
    let stream: Vec<u8> = frames.iter().flat_map(frame).collect();
    write("peer_frame", "stream", &stream);
    for (i, f) in frames.iter().enumerate() {
        write("peer_frame", &format!("body-{i}"), &frame(f)[4..]);
    }

    let bodies = [
        r#"{"tenant":"t","slots":"0-3,7","to":"t:1"}"#,
        r#"{"tenant":"t","slots":[0,1,2],"from":"t:0","to":"t:1"}"#,
        r#"{"kind":"replica","prg":"t:0","from":3,"to":4}"#,
        r#"{"count":2,"members":[1,4,5]}"#,
        r#"{"to":2}"#,
        r#"{"operation":"scale_out","target_count":5,"prgs":{"t":8},"dry_run":true,"max_moves":2}"#,
        r#"{"prgs":8,"dry_run":false,"cp_version":12,"gate_timeout_ms":1000}"#,
        "0-63,100,200-201",
    ];
    for (i, b) in bodies.iter().enumerate() {
        write("http_bodies", &format!("body-{i}"), b.as_bytes());
    }

    write(
        "config_toml",
        "node",
        b"node-id = 2\nlisten = \"127.0.0.1:7002\"\nzone = \"a\"\nslots = 1024\nprgs = 8\n\
          max-value-bytes = 1048576\ncache-fresh-ms = 2000\nheartbeat-ms = 100\nreplace-node = false\n",
    );
    println!("seeds written under corpus/");
}
