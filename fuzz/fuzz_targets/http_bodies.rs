//! Admin API request bodies as the handlers read them (`parse_body`), and
//! slot lists in their text form (`parse_slots`). A body or a 400 that
//! says the body is invalid; slots below the limit, sorted, or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidal_core::slot::MAX_SLOTS;
use tidal_core::slot_move::parse_slots;
use tidal_node::moves_api::{
    parse_body, AddPrgsRequest, ApiError, LeaderRequest, MoveKind, MoveRequest, ReplicaMoveRequest, SlotsArg,
};
use tidal_node::scale_api::{ClusterScale, TenantScale};

fn body<T: serde::de::DeserializeOwned>(data: &[u8]) -> Option<T> {
    match parse_body::<T>(data) {
        Ok(v) => Some(v),
        Err(ApiError::BadRequest(e)) => {
            assert!(e.starts_with("invalid request body: "), "{e}");
            None
        }
        Err(e) => panic!("a body is valid or a bad request: {e:?}"),
    }
}

fn slots(text: &str) {
    if let Ok(slots) = parse_slots(text) {
        assert!(!slots.is_empty());
        assert!(slots.windows(2).all(|w| w[0] < w[1]));
        assert!(slots.iter().all(|s| *s < MAX_SLOTS));
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = body::<MoveKind>(data);
    if let Some(MoveRequest { slots: SlotsArg::Text(t), .. }) = body::<MoveRequest>(data) {
        slots(&t);
    }
    let _ = body::<ReplicaMoveRequest>(data);
    let _ = body::<AddPrgsRequest>(data);
    let _ = body::<LeaderRequest>(data);
    let _ = body::<ClusterScale>(data);
    let _ = body::<TenantScale>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        slots(text);
    }
});
