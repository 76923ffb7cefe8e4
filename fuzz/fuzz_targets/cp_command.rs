//! What the control plane reads from outside: `_cp` log entries
//! (`decode_command`), snapshots and stored states (`decode_state`) and
//! app requests (`decode_request`). A value or an error; a command that
//! decodes applies to a small cluster without a panic and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidal_control::api::decode_request;
use tidal_control::command::apply;
use tidal_control::state_format::{decode_command, decode_state, encode_command, encode_state};
use tidal_control::CpCommand;
use tidal_core::{ClusterState, NodeInfo, NodeState};

/// Three nodes and a tenant of 16 slots in 2 PRGs.
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
        apply(&mut s, 0, &CpCommand::RegisterNode(info));
    }
    apply(&mut s, 0, &CpCommand::CreateTenant { name: "t".into(), slots: 16, prgs: 2 });
    s
}

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = decode_command(data) {
        assert_eq!(decode_command(&encode_command(&cmd)).as_ref(), Ok(&cmd));
        let mut s = cluster();
        apply(&mut s, 1, &cmd);
        assert_eq!(decode_state(&encode_state(&s)).as_ref(), Ok(&s));
    }
    if let Ok(state) = decode_state(data) {
        assert_eq!(decode_state(&encode_state(&state)).as_ref(), Ok(&state));
    }
    let _ = decode_request(data);
});
