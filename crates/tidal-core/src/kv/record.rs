//! What tidal stores under a key, and its byte encoding.
//!
//! The same bytes are the value column of the storage table, the payload of
//! the internal DUMP used to move a key between groups, and part of
//! snapshots, so the format is versioned by its first byte:
//!
//! ```text
//! 0x10 value...                                    no expiry
//! 0x11 expire_at_ms(u64 BE) value...               with expiry
//! 0x12 version(u64 BE) value...                    versioned, no expiry
//! 0x13 version(u64 BE) expire_at_ms(u64 BE) value...  versioned, with expiry
//! ```
//!
//! A record's version is the log index of the entry that last wrote it in
//! its PRG (a PRG stamps every record it stores, rows a move brings in
//! included), so two reads of a key see the same version only if nothing
//! wrote the key in between: WATCH compares versions. Version 0 means
//! unstamped and is encoded in the shorter forms.

use serde::{Deserialize, Serialize};

const V1_PERSISTENT: u8 = 0x10;
const V1_EXPIRING: u8 = 0x11;
const V2_PERSISTENT: u8 = 0x12;
const V2_EXPIRING: u8 = 0x13;

/// A string value and its optional absolute expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// Unix milliseconds after which the key no longer exists.
    pub expire_at_ms: Option<u64>,
    /// The log index that last wrote the record in its PRG; 0 when not
    /// stamped. Not part of a record as ops carry it (the store stamps).
    #[serde(skip)]
    pub version: u64,
}

/// Why bytes could not be read back as a [`Record`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("empty record")]
    Empty,
    #[error("unknown record tag {0:#04x}")]
    UnknownTag(u8),
    #[error("record truncated in its header")]
    Truncated,
    #[error("versioned record with version 0")]
    ZeroVersion,
}

impl Record {
    pub fn new(value: impl Into<Vec<u8>>) -> Record {
        Record { value: value.into(), expire_at_ms: None, version: 0 }
    }

    pub fn expiring(value: impl Into<Vec<u8>>, expire_at_ms: u64) -> Record {
        Record { value: value.into(), expire_at_ms: Some(expire_at_ms), version: 0 }
    }

    /// The same record stamped with `version`.
    pub fn stamped(mut self, version: u64) -> Record {
        self.version = version;
        self
    }

    /// Whether the key exists at `now_ms`. Like Redis, a key is still there
    /// at its exact expiry millisecond and gone one millisecond later.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_none_or(|at| now_ms <= at)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.value.len() + 17);
        let versioned = self.version != 0;
        out.push(match (versioned, self.expire_at_ms.is_some()) {
            (false, false) => V1_PERSISTENT,
            (false, true) => V1_EXPIRING,
            (true, false) => V2_PERSISTENT,
            (true, true) => V2_EXPIRING,
        });
        if versioned {
            out.extend_from_slice(&self.version.to_be_bytes());
        }
        if let Some(at) = self.expire_at_ms {
            out.extend_from_slice(&at.to_be_bytes());
        }
        out.extend_from_slice(&self.value);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
        let (&tag, rest) = bytes.split_first().ok_or(RecordError::Empty)?;
        let (version, rest) = match tag {
            V1_PERSISTENT | V1_EXPIRING => (0, rest),
            V2_PERSISTENT | V2_EXPIRING => {
                let (v, rest) = rest.split_first_chunk::<8>().ok_or(RecordError::Truncated)?;
                (u64::from_be_bytes(*v), rest)
            }
            other => return Err(RecordError::UnknownTag(other)),
        };
        if version == 0 && matches!(tag, V2_PERSISTENT | V2_EXPIRING) {
            // Version 0 has the short forms: one record, one encoding.
            return Err(RecordError::ZeroVersion);
        }
        let rec = match tag {
            V1_EXPIRING | V2_EXPIRING => {
                let (at, value) = rest.split_first_chunk::<8>().ok_or(RecordError::Truncated)?;
                Record::expiring(value, u64::from_be_bytes(*at))
            }
            _ => Record::new(rest),
        };
        Ok(rec.stamped(version))
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
        assert_eq!(Record::new("ab").stamped(7).encode(), b"\x12\x00\x00\x00\x00\x00\x00\x00\x07ab");
        assert_eq!(
            Record::expiring("v", 0x0102).stamped(9).encode(),
            b"\x13\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00\x00\x00\x00\x01\x02v"
        );
        assert_eq!(Record::decode(b"\x12\x00\x00\x00\x00\x00\x00\x00\x00v"), Err(RecordError::ZeroVersion));
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
        fn round_trips(
            value in proptest::collection::vec(any::<u8>(), 0..64),
            at in proptest::option::of(any::<u64>()),
            version in prop_oneof![Just(0u64), any::<u64>()],
        ) {
            let rec = Record { value, expire_at_ms: at, version };
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
        fn records_cut_in_their_header_are_errors(
            at in proptest::option::of(any::<u64>()),
            version in prop_oneof![Just(0u64), 1..u64::MAX],
            cut in 0usize..17,
        ) {
            let bytes = Record { value: b"v".to_vec(), expire_at_ms: at, version }.encode();
            let header = 1 + if at.is_some() { 8 } else { 0 } + if version != 0 { 8 } else { 0 };
            prop_assert!(Record::decode(&bytes[..cut.min(header - 1)]).is_err());
        }
    }
}
