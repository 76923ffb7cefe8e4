//! CONFIG GET / CONFIG SET answers.
//!
//! tidal reports the Redis parameters clients and tools ask about, with
//! values that describe what tidal actually does: every acknowledged write
//! is in a Raft log on a majority before the reply, which is closest to
//! `appendonly yes` + `appendfsync always`; there are no RDB snapshots
//! (`save ""`), one database, and no eviction.
//!
//! The encoding thresholds (`hash-max-listpack-entries` and its kin) are
//! the exception: clients and tools set them, so CONFIG SET stores them
//! (on the node that takes it) and CONFIG GET shows them. tidal keeps no
//! encodings for them to change; OBJECT ENCODING judges by them, and a
//! stream's node sizes (`stream-node-max-*`) group its entries as Redis's
//! do, which approximate trimming follows.

use super::command::clip;
use super::glob::glob_match_nocase;
use super::integer::parse_i64;
use super::reply::Reply;
use super::stream::NodeLimits;

/// An encoding threshold CONFIG SET takes: its name, the older name Redis
/// still answers to, its default and its bounds, and whether it is a size
/// in bytes (which takes units: `1kb`, `2m`).
struct Encoding {
    name: &'static str,
    alias: Option<&'static str>,
    default: i64,
    min: i64,
    max: i64,
    bytes: bool,
}

const fn encoding(name: &'static str, alias: Option<&'static str>, default: i64, min: i64, max: i64) -> Encoding {
    Encoding { name, alias, default, min, max, bytes: false }
}

const fn size(name: &'static str, alias: &'static str, default: i64) -> Encoding {
    Encoding { name, alias: Some(alias), default, min: 0, max: i64::MAX, bytes: true }
}

/// A size as Redis reads one (`memtoull`): digits and an optional unit
/// (b, k, kb, m, mb, g, gb; any case); the empty string is 0. `None` for
/// anything else; a size past `u64` is `u128::MAX`.
fn parse_size(text: &[u8]) -> Option<u128> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    let unit: u128 = match text[digits..].to_ascii_lowercase().as_slice() {
        b"" | b"b" => 1,
        b"k" => 1000,
        b"kb" => 1024,
        b"m" => 1000 * 1000,
        b"mb" => 1024 * 1024,
        b"g" => 1000 * 1000 * 1000,
        b"gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n: u128 = std::str::from_utf8(&text[..digits]).ok()?.parse().unwrap_or(if digits == 0 { 0 } else { u128::MAX });
    Some(n.saturating_mul(unit))
}

const INT: (i64, i64) = (i32::MIN as i64, i32::MAX as i64);

/// Redis 7.0's encoding thresholds, with its defaults and bounds.
static ENCODINGS: &[Encoding] = &[
    encoding("hash-max-listpack-entries", Some("hash-max-ziplist-entries"), 512, 0, i64::MAX),
    size("hash-max-listpack-value", "hash-max-ziplist-value", 64),
    encoding("set-max-intset-entries", None, 512, 0, i64::MAX),
    encoding("zset-max-listpack-entries", Some("zset-max-ziplist-entries"), 128, 0, i64::MAX),
    size("zset-max-listpack-value", "zset-max-ziplist-value", 64),
    encoding("list-max-listpack-size", Some("list-max-ziplist-size"), -2, INT.0, INT.1),
    encoding("list-compress-depth", None, 0, 0, INT.1),
    Encoding { name: "stream-node-max-bytes", alias: None, default: 4096, min: 0, max: i64::MAX, bytes: true },
    encoding("stream-node-max-entries", None, 100, 0, i64::MAX),
    // Not an encoding, but a number kept and shown the same way: how long
    // a script runs before other commands are answered BUSY (ms, 0 never).
    encoding("busy-reply-threshold", Some("lua-time-limit"), 5000, 0, i64::MAX),
];

/// Where [`ENCODINGS`] holds `busy-reply-threshold`.
pub const BUSY_REPLY_THRESHOLD: usize = ENCODINGS.len() - 1;

/// Where [`ENCODINGS`] (and so [`ConfigView::encodings`] and OBJECT
/// ENCODING's limits) holds each threshold OBJECT ENCODING judges by.
pub(super) const HASH_ENTRIES: usize = 0;
pub(super) const HASH_VALUE: usize = 1;
pub(super) const SET_ENTRIES: usize = 2;
pub(super) const ZSET_ENTRIES: usize = 3;
pub(super) const ZSET_VALUE: usize = 4;
const STREAM_BYTES: usize = 7;
const STREAM_ENTRIES: usize = 8;

/// How big a stream's nodes grow under the thresholds `encodings` (as
/// [`encoding_defaults`] orders them): what XADD and XTRIM carry.
pub fn node_limits(encodings: &[i64]) -> NodeLimits {
    let at = |i: usize| encodings.get(i).map_or(ENCODINGS[i].default, |v| *v).max(0) as u64;
    NodeLimits { max_bytes: at(STREAM_BYTES), max_entries: at(STREAM_ENTRIES) }
}

/// The encoding thresholds' defaults, in the order [`ConfigView::encodings`]
/// holds their values.
pub fn encoding_defaults() -> Vec<i64> {
    ENCODINGS.iter().map(|e| e.default).collect()
}

/// Node settings CONFIG GET reports; filled in by the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigView {
    /// The RESP listener port.
    pub port: u16,
    /// The RESP listener address.
    pub bind: String,
    /// Largest accepted value (`--max-value-bytes`), as `proto-max-bulk-len`.
    pub max_value_bytes: u64,
    /// Connection limit, 0 when unlimited.
    pub maxclients: u64,
    /// Idle connection timeout in seconds, 0 = never.
    pub timeout_secs: u64,
    /// The encoding thresholds' values, as [`encoding_defaults`] orders them.
    pub encodings: Vec<i64>,
    /// `notify-keyspace-events`, as [`super::notify::parse_flags`] reads it.
    pub notify_keyspace_events: u32,
}

/// What a CONFIG SET changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigUpdate {
    /// New encoding thresholds, by their index in [`encoding_defaults`].
    pub encodings: Vec<(usize, i64)>,
    pub notify_keyspace_events: Option<u32>,
}

impl ConfigView {
    /// Every reported parameter with its value, in a stable order.
    fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = self.fixed();
        for (e, v) in ENCODINGS.iter().zip(&self.encodings) {
            params.push((e.name, v.to_string()));
            if let Some(alias) = e.alias {
                params.push((alias, v.to_string()));
            }
        }
        params
    }

    fn fixed(&self) -> Vec<(&'static str, String)> {
        vec![
            ("appendonly", "yes".into()),
            ("appendfsync", "always".into()),
            ("save", String::new()),
            ("databases", "1".into()),
            ("maxmemory", "0".into()),
            ("maxmemory-policy", "noeviction".into()),
            ("maxclients", self.maxclients.to_string()),
            ("port", self.port.to_string()),
            ("bind", self.bind.clone()),
            ("proto-max-bulk-len", self.max_value_bytes.to_string()),
            ("timeout", self.timeout_secs.to_string()),
            ("tcp-keepalive", "0".into()),
            ("cluster-enabled", "no".into()),
            ("replica-read-only", "yes".into()),
            ("notify-keyspace-events", super::notify::flags_text(self.notify_keyspace_events)),
            ("lazyfree-lazy-user-flush", "no".into()),
        ]
    }
}

/// CONFIG GET pattern...: name/value pairs of every parameter matching any
/// pattern (case-insensitive glob), each once, as a map.
pub fn config_get(patterns: &[Vec<u8>], view: &ConfigView) -> Reply {
    let params = view.params();
    let mut hit = vec![false; params.len()];
    for pattern in patterns {
        for (i, (name, _)) in params.iter().enumerate() {
            if glob_match_nocase(pattern, name.as_bytes()) {
                hit[i] = true;
            }
        }
    }
    Reply::Map(
        params
            .into_iter()
            .zip(hit)
            .filter(|(_, h)| *h)
            .map(|((name, value), _)| (Reply::bulk(name), Reply::bulk(value)))
            .collect(),
    )
}

/// CONFIG SET: the encoding thresholds and `notify-keyspace-events` are
/// set (all of the pairs or none); the rest of
/// tidal's configuration is fixed at startup, so other known parameters
/// are refused as immutable and unknown ones as unknown, with Redis'
/// texts for each.
pub fn config_set(pairs: &[(Vec<u8>, Vec<u8>)], view: &ConfigView) -> Result<ConfigUpdate, Reply> {
    if pairs.is_empty() {
        return Err(Reply::wrong_arity("config|set"));
    }
    let fixed = view.fixed();
    let mut updates: Vec<(usize, i64)> = Vec::with_capacity(pairs.len());
    let mut notify = None;
    for (name, value) in pairs {
        let shown = clip(name, name.len());
        let failed =
            |why: &str| Reply::err(format!("CONFIG SET failed (possibly related to argument '{shown}') - {why}"));
        let is = |n: &str| n.as_bytes().eq_ignore_ascii_case(name);
        if is("notify-keyspace-events") {
            if notify.is_some() {
                return Err(failed("duplicate parameter"));
            }
            let flags = super::notify::parse_flags(value)
                .ok_or_else(|| failed("Invalid event class character. Use 'Ag$lshzxeKEtmd'."))?;
            notify = Some(flags);
            continue;
        }
        let Some(i) = ENCODINGS.iter().position(|e| is(e.name) || e.alias.is_some_and(is)) else {
            // A fixed parameter set to the value it has changes nothing
            // (`save ""`, `appendonly yes`).
            if fixed.iter().any(|(p, v)| is(p) && v.as_bytes().eq_ignore_ascii_case(value)) {
                continue;
            }
            return Err(if fixed.iter().any(|(p, _)| is(p)) {
                failed("can't set immutable config")
            } else {
                Reply::err(format!("Unknown option or number of arguments for CONFIG SET - '{shown}'"))
            });
        };
        let e = &ENCODINGS[i];
        if updates.iter().any(|(j, _)| *j == i) {
            return Err(failed("duplicate parameter"));
        }
        let out_of_range = || failed(&format!("argument must be between {} and {} inclusive", e.min, e.max));
        let v = if e.bytes {
            let n = parse_size(value).ok_or_else(|| failed("argument must be a memory value"))?;
            i64::try_from(n).map_err(|_| out_of_range())?
        } else {
            parse_i64(value).ok_or_else(|| failed("argument couldn't be parsed into an integer"))?
        };
        if v < e.min || v > e.max {
            return Err(out_of_range());
        }
        updates.push((i, v));
    }
    Ok(ConfigUpdate { encodings: updates, notify_keyspace_events: notify })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> ConfigView {
        ConfigView {
            port: 6379,
            bind: "127.0.0.1".into(),
            max_value_bytes: 1 << 20,
            maxclients: 10000,
            timeout_secs: 0,
            encodings: encoding_defaults(),
            notify_keyspace_events: 0,
        }
    }

    fn names(r: &Reply) -> Vec<String> {
        let Reply::Map(pairs) = r else { panic!("not a map") };
        pairs
            .iter()
            .map(|(k, _)| match k {
                Reply::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
                _ => panic!(),
            })
            .collect()
    }

    #[test]
    fn get_matches_globs_once_each() {
        let r = config_get(&[b"save".to_vec()], &view());
        assert_eq!(r, Reply::Map(vec![(Reply::bulk("save"), Reply::bulk(""))]));
        let r = config_get(&[b"APPEND*".to_vec(), b"appendonly".to_vec()], &view());
        assert_eq!(names(&r), vec!["appendonly", "appendfsync"]);
        let r = config_get(&[b"proto-max-bulk-len".to_vec()], &view());
        assert_eq!(r, Reply::Map(vec![(Reply::bulk("proto-max-bulk-len"), Reply::bulk("1048576"))]));
        assert_eq!(config_get(&[b"nope".to_vec()], &view()), Reply::Map(vec![]));
        assert_eq!(names(&config_get(&[b"*".to_vec()], &view())).len(), view().params().len());
    }

    fn update(pairs: &[(&str, &str)]) -> Result<ConfigUpdate, Reply> {
        let pairs: Vec<_> = pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
        config_set(&pairs, &view())
    }

    fn set(pairs: &[(&str, &str)]) -> Result<Vec<(usize, i64)>, Reply> {
        update(pairs).map(|u| u.encodings)
    }

    /// Texts taken from redis-server 7.0.15.
    #[test]
    fn keyspace_events_are_set_and_shown_as_redis_does() {
        let u = update(&[("notify-keyspace-events", "KEA"), ("hash-max-listpack-entries", "7")]).unwrap();
        assert_eq!(u.encodings, vec![(0, 7)]);
        let flags = u.notify_keyspace_events.unwrap();
        let shown =
            config_get(&[b"notify-keyspace-events".to_vec()], &ConfigView { notify_keyspace_events: flags, ..view() });
        assert_eq!(shown, Reply::Map(vec![(Reply::bulk("notify-keyspace-events"), Reply::bulk("AKE"))]));
        assert_eq!(update(&[("notify-keyspace-events", "")]).unwrap().notify_keyspace_events, Some(0));
        assert_eq!(
            update(&[("notify-keyspace-events", "KQ")]),
            Err(Reply::err(
                "CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class \
                 character. Use 'Ag$lshzxeKEtmd'."
            ))
        );
    }

    #[test]
    fn set_is_refused_with_redis_texts() {
        assert_eq!(
            set(&[("maxmemory", "1")]),
            Err(Reply::err(
                "CONFIG SET failed (possibly related to argument 'maxmemory') - can't set immutable config"
            ))
        );
        assert_eq!(
            set(&[("foo", "1")]),
            Err(Reply::err("Unknown option or number of arguments for CONFIG SET - 'foo'"))
        );
        // Its own value is no change.
        assert_eq!(set(&[("save", ""), ("appendonly", "YES")]), Ok(vec![]));
        // One bad pair refuses them all.
        assert_eq!(
            set(&[("hash-max-listpack-entries", "5"), ("port", "1")]),
            Err(Reply::err("CONFIG SET failed (possibly related to argument 'port') - can't set immutable config"))
        );
    }

    #[test]
    fn the_indexes_object_encoding_uses_name_their_thresholds() {
        let name = |i: usize| ENCODINGS[i].name;
        assert_eq!(name(HASH_ENTRIES), "hash-max-listpack-entries");
        assert_eq!(name(HASH_VALUE), "hash-max-listpack-value");
        assert_eq!(name(SET_ENTRIES), "set-max-intset-entries");
        assert_eq!(name(ZSET_ENTRIES), "zset-max-listpack-entries");
        assert_eq!(name(ZSET_VALUE), "zset-max-listpack-value");
    }

    /// Texts taken from redis-server 7.0.15.
    #[test]
    fn encoding_thresholds_are_set_within_their_bounds() {
        let failed = |name: &str, why: &str| {
            Err(Reply::err(format!("CONFIG SET failed (possibly related to argument '{name}') - {why}")))
        };
        assert_eq!(
            set(&[("HASH-max-ziplist-entries", "77"), ("list-max-listpack-size", "-3")]),
            Ok(vec![(0, 77), (5, -3)])
        );
        assert_eq!(
            set(&[("hash-max-listpack-entries", "abc")]),
            failed("hash-max-listpack-entries", "argument couldn't be parsed into an integer")
        );
        assert_eq!(
            set(&[("hash-max-listpack-entries", "-1")]),
            failed("hash-max-listpack-entries", "argument must be between 0 and 9223372036854775807 inclusive")
        );
        assert_eq!(
            set(&[("hash-max-listpack-entries", "5"), ("hash-max-ziplist-entries", "6")]),
            failed("hash-max-ziplist-entries", "duplicate parameter")
        );
        assert_eq!(
            set(&[("list-compress-depth", "-1")]),
            failed("list-compress-depth", "argument must be between 0 and 2147483647 inclusive")
        );
        // Sizes take units, as Redis's memory values do.
        assert_eq!(set(&[("hash-max-ziplist-value", "1KB")]), Ok(vec![(1, 1024)]));
        assert_eq!(set(&[("zset-max-listpack-value", "2m")]), Ok(vec![(4, 2_000_000)]));
        assert_eq!(set(&[("zset-max-listpack-value", "")]), Ok(vec![(4, 0)]));
        for bad in ["-1", "x", "1.5"] {
            assert_eq!(
                set(&[("hash-max-ziplist-value", bad)]),
                failed("hash-max-ziplist-value", "argument must be a memory value"),
                "{bad}"
            );
        }
        assert_eq!(
            set(&[("hash-max-ziplist-value", "9223372036854775808")]),
            failed("hash-max-ziplist-value", "argument must be between 0 and 9223372036854775807 inclusive")
        );
        let mut v = view();
        v.encodings[3] = 7;
        let r = config_get(&[b"zset*entries".to_vec()], &v);
        assert_eq!(
            r,
            Reply::Map(vec![
                (Reply::bulk("zset-max-listpack-entries"), Reply::bulk("7")),
                (Reply::bulk("zset-max-ziplist-entries"), Reply::bulk("7")),
            ])
        );
    }
}
