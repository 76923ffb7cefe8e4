//! What tidal stores under a key, and its byte encoding.
//!
//! The same bytes are the value column of the storage table, the payload of
//! the internal DUMP used to move a key between groups, and part of
//! snapshots, so the format is versioned by its first byte:
//!
//! ```text
//! 0x10 value...                 version 1, no expiry
//! 0x11 expire_at_ms(u64 BE) value...   version 1, with expiry
//! ```

use serde::{Deserialize, Serialize};

const V1_PERSISTENT: u8 = 0x10;
const V1_EXPIRING: u8 = 0x11;

/// A string value and its optional absolute expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// Unix milliseconds after which the key no longer exists.
    pub expire_at_ms: Option<u64>,
}

/// Why bytes could not be read back as a [`Record`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("empty record")]
    Empty,
    #[error("unknown record tag {0:#04x}")]
    UnknownTag(u8),
    #[error("record truncated before its expiry")]
    Truncated,
}

impl Record {
    pub fn new(value: impl Into<Vec<u8>>) -> Record {
        Record { value: value.into(), expire_at_ms: None }
    }

    pub fn expiring(value: impl Into<Vec<u8>>, expire_at_ms: u64) -> Record {
        Record { value: value.into(), expire_at_ms: Some(expire_at_ms) }
    }

    /// Whether the key exists at `now_ms`. Like Redis, a key is still there
    /// at its exact expiry millisecond and gone one millisecond later.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_none_or(|at| now_ms <= at)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.value.len() + 9);
        match self.expire_at_ms {
            None => out.push(V1_PERSISTENT),
            Some(at) => {
                out.push(V1_EXPIRING);
                out.extend_from_slice(&at.to_be_bytes());
            }
        }
        out.extend_from_slice(&self.value);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
        let (&tag, rest) = bytes.split_first().ok_or(RecordError::Empty)?;
        match tag {
            V1_PERSISTENT => Ok(Record::new(rest)),
            V1_EXPIRING => {
                let (at, value) = rest.split_first_chunk::<8>().ok_or(RecordError::Truncated)?;
                Ok(Record::expiring(value, u64::from_be_bytes(*at)))
            }
            other => Err(RecordError::UnknownTag(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_stable() {
        assert_eq!(Record::new("ab").encode(), b"\x10ab");
        assert_eq!(Record::expiring("v", 0x0102).encode(), b"\x11\x00\x00\x00\x00\x00\x00\x01\x02v");
    }

    #[test]
    fn bad_bytes_are_errors() {
        assert_eq!(Record::decode(b""), Err(RecordError::Empty));
        assert_eq!(Record::decode(b"\x11\x00\x01"), Err(RecordError::Truncated));
        assert_eq!(Record::decode(b"\x07abc"), Err(RecordError::UnknownTag(7)));
    }

    #[test]
    fn liveness_includes_the_expiry_millisecond() {
        let r = Record::expiring("v", 100);
        assert!(r.is_live(99));
        assert!(r.is_live(100));
        assert!(!r.is_live(101));
        assert!(Record::new("v").is_live(u64::MAX));
    }

    proptest! {
        #[test]
        fn round_trips(value in proptest::collection::vec(any::<u8>(), 0..64), at in proptest::option::of(any::<u64>())) {
            let rec = Record { value, expire_at_ms: at };
            prop_assert_eq!(Record::decode(&rec.encode()), Ok(rec));
        }

        #[test]
        fn arbitrary_bytes_are_a_record_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            if let Ok(rec) = Record::decode(&bytes) {
                prop_assert_eq!(rec.encode(), bytes);
            }
        }

        /// Cut inside its header, a record is an error (its value has no
        /// length of its own: any cut after the header is a shorter value).
        #[test]
        fn records_cut_in_their_header_are_errors(at in proptest::option::of(any::<u64>()), cut in 0usize..9) {
            let bytes = Record { value: b"v".to_vec(), expire_at_ms: at }.encode();
            let header = if at.is_some() { 9 } else { 1 };
            prop_assert!(Record::decode(&bytes[..cut.min(header - 1)]).is_err());
        }
    }
}
