//! What a PRG's state machine reads from outside: log entry bodies
//! (`decode_entry`), snapshot pieces from a leader (`KvMachine::stage`),
//! and stored records. A value or an error; an entry that decodes encodes
//! and decodes again the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidal_core::kv::Record;
use tidal_raft::kv_entry::{decode_entry, encode_entry};
use tidal_raft::kv_machine::{KvMachine, KvSpec};
use tidal_raft::Machine;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = decode_entry(data) {
        assert_eq!(decode_entry(&encode_entry(&entry)).as_ref(), Ok(&entry));
    }
    let machine = KvMachine::new("t:0", &KvSpec::whole(8));
    let _ = machine.stage(true, data);
    let _ = machine.stage(false, data);
    if let Ok(rec) = Record::decode(data) {
        assert_eq!(rec.encode(), data);
    }
});
