use super::*;
use crate::types::encode;

#[test]
fn entries_from_before_versioning_still_decode() {
    let ops = vec![WriteOp::set("a", "1"), WriteOp::Flush];
    assert_eq!(decode_entry(&encode(&ops)), Ok(KvEntry::Writes(ops.clone())));
    assert_eq!(decode_entry(&encode_batch(&ops)), Ok(KvEntry::Writes(ops)));
    let e = KvEntry::Slots(SlotCommand::Fence { move_id: 3, slots: vec![1] });
    assert_eq!(decode_entry(&encode_entry(&e)), Ok(e));
}

#[test]
fn unknown_versions_and_garbage_are_errors() {
    assert!(decode_entry(&encode_versioned(9, &1u8)).unwrap_err().contains("version 9"));
    assert!(decode_entry(&[0xFF, 0x00, KV_ENTRY_VERSION, 0x7F]).is_err());
    assert!(decode_entry(&[0x05]).is_err());
}

use proptest::prelude::*;
use tidal_core::kv::{parse, Command, Record};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// Write ops as clients make them: a write command with arguments of
/// plausible and arbitrary text, through the command parser. What the
/// parser refuses becomes a plain SET of the arguments.
fn write_op() -> impl Strategy<Value = WriteOp> {
    let name = proptest::sample::select(vec![
        "SET",
        "SETEX",
        "PSETEX",
        "GETSET",
        "DEL",
        "INCR",
        "DECRBY",
        "INCRBYFLOAT",
        "APPEND",
        "SETRANGE",
        "GETDEL",
        "GETEX",
        "EXPIRE",
        "PEXPIREAT",
        "PERSIST",
        "MSET",
        "MSETNX",
        "SETNX",
        "RENAME",
        "FLUSHDB",
    ]);
    let arg = prop_oneof![
        bytes(12),
        proptest::sample::select(vec!["EX", "PX", "NX", "XX", "GT", "LT", "KEEPTTL", "GET", "PERSIST", "EXAT"])
            .prop_map(|s| s.as_bytes().to_vec()),
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        (0u32..100_000).prop_map(|n| n.to_string().into_bytes()),
    ];
    let restore =
        (bytes(12), proptest::option::of((bytes(12), proptest::option::of(any::<u64>())))).prop_map(|(key, r)| {
            WriteOp::Restore { key, record: r.map(|(v, at)| Record { expire_at_ms: at, ..Record::new(v) }) }
        });
    prop_oneof![
        9 => (name, proptest::collection::vec(arg, 0..6)).prop_map(|(name, args)| {
            let mut argv = vec![name.as_bytes().to_vec()];
            argv.extend(args.iter().cloned());
            match parse(argv) {
                Ok(Command::Write(op)) => op,
                _ => WriteOp::set(args.concat(), name),
            }
        }),
        1 => restore,
    ]
}

fn slots() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::vec(any::<u32>(), 0..6)
}

fn slot_command() -> impl Strategy<Value = SlotCommand> {
    (any::<u64>(), slots(), any::<u32>(), any::<u64>(), 0..7u8).prop_map(|(move_id, slots, to, epoch, which)| {
        match which {
            0 => SlotCommand::BeginExport { move_id, slots },
            1 => SlotCommand::Fence { move_id, slots },
            2 => SlotCommand::Unfence { move_id, slots },
            3 => SlotCommand::Release { move_id, slots, to, epoch },
            4 => SlotCommand::BeginImport { move_id, slots },
            5 => SlotCommand::Adopt { move_id, slots },
            _ => SlotCommand::DropImport { move_id, slots },
        }
    })
}

fn kv_entry() -> impl Strategy<Value = KvEntry> {
    let row = (bytes(16), proptest::option::of(bytes(16))).prop_map(|(key, record)| Row { key, record });
    prop_oneof![
        proptest::collection::vec(write_op(), 0..6).prop_map(KvEntry::Writes),
        slot_command().prop_map(KvEntry::Slots),
        (any::<u64>(), proptest::collection::vec(row, 0..6))
            .prop_map(|(move_id, rows)| KvEntry::Rows { move_id, rows }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes, bare or behind a version header: an entry or an error.
    #[test]
    fn arbitrary_bodies_never_panic(body in bytes(256), version in 0u8..3) {
        let _ = decode_entry(&body);
        let mut versioned = vec![0xFF, 0x00, version];
        versioned.extend_from_slice(&body);
        let _ = decode_entry(&versioned);
    }

    #[test]
    fn entries_round_trip(e in kv_entry()) {
        prop_assert_eq!(decode_entry(&encode_entry(&e)), Ok(e.clone()));
        if let KvEntry::Writes(ops) = &e {
            prop_assert_eq!(decode_entry(&encode_batch(ops)), Ok(e.clone()));
            // As written before entries carried a version.
            prop_assert_eq!(decode_entry(&encode(ops)), Ok(e.clone()));
        }
    }

    /// An entry cut short never reads as an entry.
    #[test]
    fn truncated_entries_are_errors(e in kv_entry(), cut in any::<prop::sample::Index>()) {
        let whole = encode_entry(&e);
        let cut = cut.index(whole.len());
        prop_assert!(decode_entry(&whole[..cut]).is_err());
    }
}
