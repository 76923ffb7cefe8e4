//! Client bytes as the RESP server reads them: delivered in chunks, framed
//! by `RequestDecoder` under small limits, each request parsed into a
//! command. Requests or a protocol error; while waiting for more, the
//! buffer never holds more than the limits allow.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tidal_core::kv::parse;
use tidal_core::resp::{RequestDecoder, MAX_INLINE_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, stream)) = data.split_first() else { return };
    // The first byte picks the chunk size and the limits.
    let chunk = usize::from(knobs & 0x3F) + 1;
    let max_bulk = if knobs & 0x40 == 0 { 32 } else { 1 << 20 };
    let max_request = if knobs & 0x80 == 0 { 256 } else { 1 << 20 };
    let mut decoder = RequestDecoder::new(max_bulk).max_request(max_request);
    let mut buf = BytesMut::new();
    for part in stream.chunks(chunk) {
        buf.extend_from_slice(part);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(args)) => {
                    assert!(!args.is_empty());
                    assert!(args.iter().all(|a| a.len() <= max_bulk.max(MAX_INLINE_LEN)));
                    let _ = parse(args);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(e.0.starts_with("Protocol error: "), "{e}");
                    return;
                }
            }
        }
        assert!(buf.len() <= max_request.max(MAX_INLINE_LEN) + MAX_INLINE_LEN + chunk, "{} buffered", buf.len());
    }
});
