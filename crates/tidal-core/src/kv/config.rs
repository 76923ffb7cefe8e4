//! CONFIG GET / CONFIG SET answers.
//!
//! tidal reports the Redis parameters clients and tools ask about, with
//! values that describe what tidal actually does: every acknowledged write
//! is in a Raft log on a majority before the reply, which is closest to
//! `appendonly yes` + `appendfsync always`; there are no RDB snapshots
//! (`save ""`), one database, and no eviction.

use super::command::clip;
use super::glob::glob_match_nocase;
use super::reply::Reply;

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
}

impl ConfigView {
    /// Every reported parameter with its value, in a stable order.
    fn params(&self) -> Vec<(&'static str, String)> {
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
            ("notify-keyspace-events", String::new()),
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

/// CONFIG SET: tidal's configuration is fixed at startup, so known
/// parameters are refused as immutable and unknown ones as unknown, with
/// Redis' texts for each.
pub fn config_set(pairs: &[(Vec<u8>, Vec<u8>)], view: &ConfigView) -> Reply {
    let params = view.params();
    let Some((name, _)) = pairs.first() else {
        return Reply::wrong_arity("config|set");
    };
    let shown = clip(name, name.len());
    if params.iter().any(|(p, _)| p.as_bytes().eq_ignore_ascii_case(name)) {
        Reply::err(format!("CONFIG SET failed (possibly related to argument '{shown}') - can't set immutable config"))
    } else {
        Reply::err(format!("Unknown option or number of arguments for CONFIG SET - '{shown}'"))
    }
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

    #[test]
    fn set_is_refused_with_redis_texts() {
        assert_eq!(
            config_set(&[(b"maxmemory".to_vec(), b"1".to_vec())], &view()),
            Reply::err("CONFIG SET failed (possibly related to argument 'maxmemory') - can't set immutable config")
        );
        assert_eq!(
            config_set(&[(b"foo".to_vec(), b"1".to_vec())], &view()),
            Reply::err("Unknown option or number of arguments for CONFIG SET - 'foo'")
        );
    }
}
