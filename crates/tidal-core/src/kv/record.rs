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
//! 0x14 kind(u8) flags(u8) [version] [expire_at_ms] header...
//!                                                  a collection's header,
//!                                                  or a raw string's value
//! ```
//!
//! A collection (hash, set, list, sorted set, stream) is a header record under its
//! key, holding its kind, expiry, version and a small kind-specific header
//! (its length, a list's ends), and one element row per field or member
//! next to it (see [`super::store::KvStore`]). In the `0x14` form, flag bit
//! 0 says a version follows and bit 1 an expiry. Bit 2 marks a raw string
//! (kind 0), the only string written in this form: one that a command
//! changed in place (APPEND, SETRANGE, SETBIT, BITFIELD) or BITOP made,
//! which Redis keeps in its `raw` encoding whatever it holds.
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
const TYPED: u8 = 0x14;
const FLAG_VERSIONED: u8 = 1;
const FLAG_EXPIRING: u8 = 2;
const FLAG_RAW: u8 = 4;

/// What a key holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    #[default]
    String,
    Hash,
    Set,
    List,
    ZSet,
    Stream,
}

impl Kind {
    /// The name TYPE answers with.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::List => "list",
            Kind::ZSet => "zset",
            Kind::Stream => "stream",
        }
    }

    /// The kind TYPE calls `name` (any case).
    pub fn from_name(name: &[u8]) -> Option<Kind> {
        [Kind::String, Kind::Hash, Kind::Set, Kind::List, Kind::ZSet, Kind::Stream]
            .into_iter()
            .find(|k| k.name().as_bytes().eq_ignore_ascii_case(name))
    }

    fn code(self) -> u8 {
        match self {
            Kind::String => 0,
            Kind::Hash => 1,
            Kind::Set => 2,
            Kind::List => 3,
            Kind::ZSet => 4,
            Kind::Stream => 5,
        }
    }

    fn from_code(code: u8) -> Option<Kind> {
        Some(match code {
            1 => Kind::Hash,
            2 => Kind::Set,
            3 => Kind::List,
            4 => Kind::ZSet,
            5 => Kind::Stream,
            _ => return None,
        })
    }
}

/// What a key holds: a string value, or a collection's header; its
/// optional absolute expiry; its version.
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
    /// A string's `value` is the string; a collection's is its header. Ops
    /// carry only strings (a collection never travels as one record).
    #[serde(skip)]
    pub kind: Kind,
    /// A string changed in place or made by BITOP: OBJECT ENCODING calls
    /// it `raw` at any length, as Redis does. Set again (SET, INCR ...),
    /// it is not. Strings only.
    #[serde(skip)]
    pub raw: bool,
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
    #[error("typed record of unknown kind {0}")]
    UnknownKind(u8),
    #[error("typed record with unknown flags {0:#04x}")]
    UnknownFlags(u8),
}

impl Record {
    pub fn new(value: impl Into<Vec<u8>>) -> Record {
        Record { value: value.into(), expire_at_ms: None, version: 0, kind: Kind::String, raw: false }
    }

    /// A collection's header record.
    pub fn collection(kind: Kind, header: impl Into<Vec<u8>>, expire_at_ms: Option<u64>) -> Record {
        Record { value: header.into(), expire_at_ms, version: 0, kind, raw: false }
    }

    pub fn expiring(value: impl Into<Vec<u8>>, expire_at_ms: u64) -> Record {
        Record { value: value.into(), expire_at_ms: Some(expire_at_ms), version: 0, kind: Kind::String, raw: false }
    }

    /// The same string marked raw (see [`Record::raw`]).
    pub fn made_raw(mut self) -> Record {
        self.raw = true;
        self
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

    pub fn is_string(&self) -> bool {
        self.kind == Kind::String
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.value.len() + 19);
        let versioned = self.version != 0;
        let raw = self.raw && self.kind == Kind::String;
        if self.kind != Kind::String || raw {
            out.push(TYPED);
            out.push(self.kind.code());
            out.push(
                if versioned { FLAG_VERSIONED } else { 0 }
                    | if self.expire_at_ms.is_some() { FLAG_EXPIRING } else { 0 }
                    | if raw { FLAG_RAW } else { 0 },
            );
            if versioned {
                out.extend_from_slice(&self.version.to_be_bytes());
            }
            if let Some(at) = self.expire_at_ms {
                out.extend_from_slice(&at.to_be_bytes());
            }
            out.extend_from_slice(&self.value);
            return out;
        }
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
        if tag == TYPED {
            return Record::decode_typed(rest);
        }
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

    fn decode_typed(bytes: &[u8]) -> Result<Record, RecordError> {
        let [code, flags, rest @ ..] = bytes else { return Err(RecordError::Truncated) };
        // Kind 0 (a string) comes in this form only when raw, and only a
        // string is raw: one record, one encoding.
        let raw = flags & FLAG_RAW != 0;
        let kind = match *code {
            0 if raw => Kind::String,
            c => Kind::from_code(c).ok_or(RecordError::UnknownKind(c))?,
        };
        if flags & !(FLAG_VERSIONED | FLAG_EXPIRING | FLAG_RAW) != 0 || (raw && kind != Kind::String) {
            return Err(RecordError::UnknownFlags(*flags));
        }
        let mut rest = rest;
        let mut word = |present: bool| -> Result<Option<u64>, RecordError> {
            if !present {
                return Ok(None);
            }
            let (w, tail) = rest.split_first_chunk::<8>().ok_or(RecordError::Truncated)?;
            rest = tail;
            Ok(Some(u64::from_be_bytes(*w)))
        };
        let version = word(flags & FLAG_VERSIONED != 0)?;
        let expire_at_ms = word(flags & FLAG_EXPIRING != 0)?;
        if version == Some(0) {
            return Err(RecordError::ZeroVersion);
        }
        Ok(Record { value: rest.to_vec(), expire_at_ms, version: version.unwrap_or(0), kind, raw })
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
        assert_eq!(
            Record::collection(Kind::Hash, "h", Some(0x0102)).stamped(3).encode(),
            b"\x14\x01\x03\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x01\x02h"
        );
        assert_eq!(Record::collection(Kind::ZSet, "", None).encode(), b"\x14\x04\x00");
        assert_eq!(Record::new("ab").made_raw().encode(), b"\x14\x00\x04ab");
        assert_eq!(Record::new("ab").made_raw().stamped(3).encode(), b"\x14\x00\x05\x00\x00\x00\x00\x00\x00\x00\x03ab");
        assert_eq!(Record::decode(b"\x14\x00\x04ab"), Ok(Record::new("ab").made_raw()));
    }

    #[test]
    fn bad_bytes_are_errors() {
        assert_eq!(Record::decode(b""), Err(RecordError::Empty));
        assert_eq!(Record::decode(b"\x11\x00\x01"), Err(RecordError::Truncated));
        assert_eq!(Record::decode(b"\x07abc"), Err(RecordError::UnknownTag(7)));
        assert_eq!(Record::decode(b"\x14\x00\x00"), Err(RecordError::UnknownKind(0)));
        assert_eq!(Record::decode(b"\x14\x01\x04"), Err(RecordError::UnknownFlags(4)), "only a string is raw");
        assert_eq!(Record::decode(b"\x14\x00\x08"), Err(RecordError::UnknownKind(0)));
        assert_eq!(Record::decode(b"\x14\x00\x0c"), Err(RecordError::UnknownFlags(0x0c)));
        assert_eq!(Record::decode(b"\x14\x01\x01\x00"), Err(RecordError::Truncated));
        assert_eq!(Record::decode(b"\x14\x01"), Err(RecordError::Truncated));
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
            kind in prop_oneof![Just(Kind::String), Just(Kind::Hash), Just(Kind::Set), Just(Kind::List), Just(Kind::ZSet), Just(Kind::Stream)],
            raw in any::<bool>(),
        ) {
            let rec = Record { value, expire_at_ms: at, version, kind, raw: raw && kind == Kind::String };
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
            let bytes = Record { value: b"v".to_vec(), expire_at_ms: at, version, kind: Kind::String, raw: false }.encode();
            let header = 1 + if at.is_some() { 8 } else { 0 } + if version != 0 { 8 } else { 0 };
            prop_assert!(Record::decode(&bytes[..cut.min(header - 1)]).is_err());
        }
    }
}
