//! The Redis wire protocol (RESP2 and RESP3), both directions.
//!
//! ```text
//!  socket bytes ─► BytesMut ─► RequestDecoder::decode ─► Vec<Vec<u8>> ─► kv::parse
//!  kv::Reply ─► encode(reply, Proto) ─► BytesMut ─► socket bytes
//! ```
//!
//! Requests are what clients send: arrays of bulk strings, or inline
//! commands typed into a terminal. Errors carry Redis' exact texts; after a
//! [`ProtocolError`] the connection must send it and close, as Redis does,
//! because the stream can no longer be framed.

mod decode;
mod encode;
mod inline;

pub use decode::{decode_request, ProtocolError, RequestDecoder, MAX_INLINE_LEN, MAX_MULTIBULK_LEN, MAX_REQUEST_LEN};
pub use encode::{encode, encode_push, format_double, Proto};
pub use inline::split_inline;
