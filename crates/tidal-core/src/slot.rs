//! Slot hashing: which slot of a tenant a key belongs to.
//!
//! `slot = crc16(hash_part(key)) % slots`. Like Redis Cluster, a key that
//! contains a non-empty `{tag}` is hashed on the tag only, so an application
//! can keep related keys in one slot (and so one PRG) for atomic multi-key
//! commands such as MSETNX.

use crc::{Crc, CRC_16_XMODEM};

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// Most slots a tenant may have (Redis Cluster's count): every slot number
/// is below it.
pub const MAX_SLOTS: u32 = 16_384;

/// The bytes of `key` that decide its slot: the first non-empty `{...}`
/// section if there is one, else the whole key.
pub fn hash_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The slot of `key` in a tenant with `slots` slots (`slots > 0`).
pub fn slot_of(key: &[u8], slots: u32) -> u32 {
    debug_assert!(slots > 0);
    u32::from(CRC16.checksum(hash_part(key))) % slots
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_redis_cluster_crc16() {
        // Redis Cluster's reference value: CRC16("123456789") = 0x31C3.
        assert_eq!(CRC16.checksum(b"123456789"), 0x31C3);
        // Redis Cluster key slots (16384 slots) for well-known keys.
        assert_eq!(slot_of(b"foo", 16384), 12182);
        assert_eq!(slot_of(b"bar", 16384), 5061);
    }

    #[test]
    fn hash_tags_select_the_first_non_empty_braces() {
        assert_eq!(hash_part(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_part(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_part(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_part(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_part(b"nobraces"), b"nobraces");
        assert_eq!(slot_of(b"{a}x", 1024), slot_of(b"{a}y", 1024));
    }

    proptest! {
        #[test]
        fn slot_is_in_range(key in proptest::collection::vec(any::<u8>(), 0..64), slots in 1u32..20000) {
            prop_assert!(slot_of(&key, slots) < slots);
        }
    }
}
